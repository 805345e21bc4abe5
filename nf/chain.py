"""Chains: several NFs on one interface, in a declared order, each keeping its own counters.

    chain = Chain()                                    # dispatcher + the shared PROG_ARRAY
    a = chain.member("chain/base_chain", 1)            # opened object, joined at position 1
    a.set_rodata("base_cfg", ...); a.load()            # ... configured and loaded as usual
    b = chain.member("chain/base_chain", 2); b.load()
    chain.install([a.program("xdp_base"), b.program("xdp_base")])
    link = chain.attach("p1", XdpMode.NATIVE, pin=...) # one bpf_link holds the interface

Design: tail calls through a dispatcher of our own.
- The interface's bpf_link holds the dispatcher (xdp_progs/chain/chain.bpf.c), which tail-calls
  slot 0 of a PROG_ARRAY. Each member is an NF object compiled with NF_CHAINABLE
  (xdp_progs/chain/<nf>_chain.bpf.c includes the NF's unchanged source with the define on): its
  one exit point (xdp_progs/include/stats.h) counts the verdict in the NF's own stats map and,
  when the verdict is XDP_PASS, tail-calls the slot of the next NF. So XDP_PASS means "next NF",
  any other verdict (DROP, TX, REDIRECT) ends the chain, and after the last NF the frame goes to
  the kernel. Every NF keeps all its maps and counters.
- The change to stats.h is additive and inert without NF_CHAINABLE (objects built as before
  compile to the same code), and in a chained object the position is rodata: position 0 (not
  chained) lets the verifier drop the tail call.
- Why not freplace (libxdp's dispatcher, which needs no NF cooperation): on this host kernel
  (6.18, lockdown forced to integrity) loading any BPF_PROG_TYPE_EXT program fails with EPERM
  before verification (measured; empty verifier log), so a freplace design would not run here.
  Tail calls cost one indirect jump per NF, have a depth limit of 33 (we allow 8 NFs), and need
  the members to share one PROG_ARRAY, which each reuses by fd before load.
- Deployed chains are built and changed by nf/engine.py from the members' own descriptions
  (their KIND): changing the order builds new members (same maps, reused through their pins,
  so the counters carry on) into a new PROG_ARRAY and a new dispatcher, then swaps the
  dispatcher into the interface's link with one bpf_link_update: frames see the old chain or the
  new one. Changing a kept member's config (same members, same order) touches that member only:
  its runtime fields through its controller on its pinned maps, its rodata fields by loading its
  program again on those maps and replacing its slot of the PROG_ARRAY (one map update: a tail
  call reaches the old program or the new one); the dispatcher and the other members stay.
  Each field's channel is declared on the field in its config model (nf.config.Channel); any
  other field is refused whole.
- The interface is held through a (pinned) bpf_link, like every deployment here. A link-held
  interface refuses netlink attaches, which is why libxdp's netlink dispatcher is not combined
  with it.

What an NF needs to join a chain: a chainable object (a one-line xdp_progs/<nf>/<nf>_chain.bpf.c
or xdp_progs/chain/<nf>_chain.bpf.c) named in its KIND's objects as (variant, True); the engine
lets ``Chain.join`` prepare it (PROG_ARRAY reuse + position) before its load and leaves the
attach to the chain. Members today: filter, l2_switch, sketch, flow_table, router. Only XDP_PASS
continues: a flow-table DROP or REDIRECT, a sketch in drop/redirect mode, the router's
REDIRECT/TX (every routed or answered frame) and the switch's forwarding end the chain at that
NF, so put counting NFs (sketch) in front of forwarding ones (router, switch). Programs run
only by test_run for control (the flow table's control program, the router's batch lookup)
return without the exit point, so they never enter the chain.
"""
from __future__ import annotations

import ctypes
import os
from typing import Annotated, Optional

from pydantic import Field, model_validator

from nf.bpf import BpfObject, Link, XdpMode
from nf.config import ConfigError
from nf.config.base import PROGRAM, AttachMode, Model

OBJECT = "chain/chain"
PROG = "xdp_chain"
SLOTS = 8                          # stats.h NF_CHAIN_SLOTS
CHAIN_MAP = "nf_chain"
POS_VAR = "nf_chain_pos"


class ChainStats(ctypes.Structure):
    __c_struct__ = "struct chain_stats"
    __bpf_object__ = OBJECT
    _fields_ = [("entered", ctypes.c_uint64), ("empty", ctypes.c_uint64)]


class Chain:
    """A dispatcher and its PROG_ARRAY; members join at positions 1..8."""

    def __init__(self, reuse: dict | None = None):
        """``reuse``: map name -> Map to use instead of a new one (e.g. the dispatcher counters
        of the chain this one replaces)."""
        self.obj = BpfObject.open_built(OBJECT)
        try:
            for n, m in (reuse or {}).items():
                self.obj.map(n).reuse(m)
            self.obj.load()
        except BaseException:
            self.obj.close()
            raise
        self.prog = self.obj.program(PROG)
        self.slots = self.obj.map(CHAIN_MAP)
        self.members: list = []

    def member(self, name: str, position: int, **open_kw) -> BpfObject:
        """Open a chainable object (e.g. "chain/base_chain") and join() it at ``position``."""
        obj = BpfObject.open_built(name, **open_kw)
        try:
            self.join(obj, position)
        except BaseException:
            obj.close()
            raise
        return obj

    def join(self, obj: BpfObject, position: int) -> None:
        """Before load: the opened chainable object ``obj`` shares this chain's PROG_ARRAY at
        ``position`` (1-based) and hands passed frames to position + 1. The caller configures
        and loads it, then passes its program to install()."""
        if not 1 <= position <= SLOTS:
            raise ValueError(f"chain position {position} outside 1..{SLOTS}")
        if POS_VAR not in obj.rodata_vars():
            raise ValueError(f"{obj.name} is not chainable (built without NF_CHAINABLE: no {POS_VAR})")
        obj.map(CHAIN_MAP).reuse(self.slots)
        obj.set_rodata(POS_VAR, ctypes.c_uint32(position))

    def install(self, progs: list) -> None:
        """Put the loaded members' programs into their slots (position i -> slot i - 1), last
        slot first so a frame never meets a half-filled chain; clear the slots after them."""
        if not 1 <= len(progs) <= SLOTS:
            raise ValueError(f"a chain has 1..{SLOTS} NFs, not {len(progs)}")
        for i in range(SLOTS - 1, len(progs) - 1, -1):
            self.slots.delete(ctypes.c_uint32(i).value.to_bytes(4, "little"))
        for i in range(len(progs) - 1, -1, -1):
            self.slots.update(i.to_bytes(4, "little"), progs[i].fd.to_bytes(4, "little"))
        self.members = list(progs)

    def programs(self) -> list[int]:
        """Program ids in the slots, in order (stops at the first empty slot)."""
        out = []
        for i in range(SLOTS):
            v = self.slots.lookup(i.to_bytes(4, "little"))
            if v is None:
                break
            out.append(int.from_bytes(v, "little"))
        return out

    def attach(self, iface: int | str, mode: XdpMode = XdpMode.AUTO,
               pin: str | os.PathLike | None = None) -> Link:
        return self.prog.attach_xdp(iface, mode, pin=pin)

    def stats(self) -> dict[str, int]:
        m = self.obj.map("chain_stats").typed(ctypes.c_uint32, ChainStats)
        per = m.lookup_percpu(0)
        return {"entered": sum(s.entered for s in per), "empty": sum(s.empty for s in per)}

    def close(self) -> None:
        """Release our fds; the PROG_ARRAY (and the members in it) lives on while a program or
        a pin still uses it."""
        self.obj.close()

    def __enter__(self) -> "Chain":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- chains deployed from YAML (nf up chain.yaml; nf/engine.py builds and changes them) ----------



def chainable() -> list[str]:
    """NF kinds that have a chainable object (built with NF_CHAINABLE)."""
    from nf.nfs import get, names
    return [n for n in names() if any(chained for _, chained in get(n).objects)]


class MemberSpec(Model):
    kind: str = Field(description="NF kind (`nf kinds` lists them)")
    config: dict = Field(description="that kind's config; netns and interfaces come from the chain")


class ChainConfig(Model):
    """A chain: NFs run in list order on every interface of the chain (configs/chain.yaml)."""
    chain: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="chain name (its pins' dir)")
    netns: Optional[str] = None
    interfaces: list[str] = Field(min_length=1)
    attach: AttachMode = AttachMode.auto
    # the members' fields each change through their own channel (nf.engine.plan)
    nfs: Annotated[list[MemberSpec], PROGRAM] = Field(min_length=1, max_length=SLOTS)

    @property
    def name(self) -> str:
        return self.chain

    def interface_names(self) -> list[str]:
        return list(self.interfaces)

    @model_validator(mode="after")
    def _members(self):
        self.members()
        return self

    def members(self) -> list[tuple]:
        """[(kind, validated member config)], netns forced to the chain's; errors carry
        nfs[i].config.<field> paths. A member whose config describes each interface (a router's
        addresses, a switch's VLANs: ``interfaces_in_chain``) names exactly the chain's; the
        others leave them out."""
        from nf.nfs import get
        out, errors, names = [], [], {self.chain}
        can = chainable()
        for i, m in enumerate(self.nfs):
            if m.kind not in can:
                errors.append((f"nfs[{i}].kind", f"{m.kind!r} cannot join a chain (chainable: "
                                                 f"{', '.join(can)})"))
                continue
            k = get(m.kind)
            data = {**m.config, "netns": self.netns}
            if not k.interfaces_in_chain:
                if m.config.get("interfaces"):
                    errors.append((f"nfs[{i}].config.interfaces", "a chain member runs on the chain's "
                                                                  "interfaces; leave it out"))
                data["interfaces"] = []
            try:
                cfg = k.validate(data, f"nfs[{i}]")
            except ConfigError as e:
                errors += [(f"nfs[{i}].config.{p}" if p else f"nfs[{i}].config", msg) for p, msg in e.errors]
                continue
            if k.interfaces_in_chain and sorted(cfg.interface_names()) != sorted(self.interfaces):
                where = k.interface_fields(cfg)[0][0].split("[")[0]
                what = "interfaces" if where == "interfaces" else f"interfaces as {where}"
                errors.append((f"nfs[{i}].config.{where}", f"a {k.noun} in a chain has exactly the "
                                                           f"chain's {what} ({', '.join(self.interfaces)})"))
            if cfg.name in names:
                errors.append((f"nfs[{i}].config.name", f"instance name {cfg.name!r} used twice"))
            names.add(cfg.name)
            out.append((k, cfg))
        if errors:
            raise ValueError("; ".join(f"{p}: {m}" for p, m in errors))
        return out


def chain_stats(pin_dir) -> dict[str, int]:
    """The dispatcher's counters of a deployed chain, from its pins."""
    from nf.bpf import Map
    m = Map.from_pin(pin_dir / "chain_stats")
    try:
        per = m.typed(ctypes.c_uint32, ChainStats).lookup_percpu(0)
        return {"entered": sum(s.entered for s in per), "empty": sum(s.empty for s in per)}
    finally:
        m.close()


class PinnedChain(Chain):
    """The PROG_ARRAY of a deployed chain, from its pin: members join it like a new chain's,
    and a slot can be replaced on its own (no new dispatcher)."""

    def __init__(self, d):
        from nf.bpf import Map
        self.obj = None
        self.slots = Map.from_pin(d / CHAIN_MAP)
        self.members = []

    def replace(self, position: int, prog) -> None:
        self.slots.update((position - 1).to_bytes(4, "little"), prog.fd.to_bytes(4, "little"))

    def close(self) -> None:
        self.slots.close()
