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
- Changing the order builds new members (same maps, reused through their pins or fds, so the
  counters carry on) into a new PROG_ARRAY and a new dispatcher, then swaps the dispatcher into
  the interface's link with one bpf_link_update: frames see the old chain or the new one.
- The interface is held through a (pinned) bpf_link, like every deployment here. A link-held
  interface refuses netlink attaches, which is why libxdp's netlink dispatcher is not combined
  with it.

What a controller needs to join a chain: open its chainable object, let ``Chain.member``
prepare it (PROG_ARRAY reuse + position) before its own load, and leave the attach to the chain.
"""
from __future__ import annotations

import ctypes
import os

from nf.bpf import BpfObject, Link, XdpMode

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

    def __init__(self):
        self.obj = BpfObject.open_built(OBJECT)
        try:
            self.obj.load()
        except BaseException:
            self.obj.close()
            raise
        self.prog = self.obj.program(PROG)
        self.slots = self.obj.map(CHAIN_MAP)
        self.members: list = []

    def member(self, name: str, position: int, **open_kw) -> BpfObject:
        """Open a chainable object (e.g. "chain/base_chain") for ``position`` (1-based): it will
        share this chain's PROG_ARRAY and hand passed frames to position + 1. The caller
        configures and loads it, then passes its program to install()."""
        if not 1 <= position <= SLOTS:
            raise ValueError(f"chain position {position} outside 1..{SLOTS}")
        obj = BpfObject.open_built(name, **open_kw)
        try:
            if POS_VAR not in obj.rodata_vars():
                raise ValueError(f"{name} is not chainable (built without NF_CHAINABLE: no {POS_VAR})")
            obj.map(CHAIN_MAP).reuse(self.slots)
            obj.set_rodata(POS_VAR, ctypes.c_uint32(position))
        except BaseException:
            obj.close()
            raise
        return obj

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
