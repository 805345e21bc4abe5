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
- Changing a kept member's config (same members, same order) touches that member only: its
  runtime fields through its controller on its pinned maps, its rodata fields by loading its
  program again on those maps and replacing its slot of the PROG_ARRAY (one map update: a tail
  call reaches the old program or the new one); the dispatcher and the other members stay.
  Each field's channel is declared on the field in its config model (nf.config.Channel); any
  other field is refused whole.
- The interface is held through a (pinned) bpf_link, like every deployment here. A link-held
  interface refuses netlink attaches, which is why libxdp's netlink dispatcher is not combined
  with it.

What a controller needs to join a chain: open its chainable object, let ``Chain.member``
prepare it (PROG_ARRAY reuse + position) before its own load, and leave the attach to the chain.
Members today: filter, l2_switch, sketch, flow_table, router (each has a one-line
xdp_progs/<nf>/<nf>_chain.bpf.c or xdp_progs/chain/<nf>_chain.bpf.c; the sketch, flow table
and router controllers expose ``_open_object()`` which the chain overrides). Only XDP_PASS
continues: a flow-table DROP or REDIRECT, a sketch in drop/redirect mode, the router's
REDIRECT/TX (every routed or answered frame) and the switch's forwarding end the chain at that
NF, so put counting NFs (sketch) in front of forwarding ones (router, switch). Programs run
only by test_run for control (the flow table's control program, the router's batch lookup)
return without the exit point, so they never enter the chain.
"""
from __future__ import annotations

import contextlib
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


# ---- chains deployed from YAML (nf up chain.yaml) ----------------------------------------------
from typing import Annotated, Optional  # noqa: E402

from pydantic import Field, model_validator  # noqa: E402

from nf.config import ConfigError  # noqa: E402
from nf.config.base import PROGRAM, AttachMode, Model  # noqa: E402

CHAINABLE = ("filter", "l2_switch", "sketch", "flow_table", "router")
# kinds whose config names interfaces of its own: in a chain the chain's interfaces are used
_OWN_IFACES = ("filter", "sketch", "flow_table")


class MemberSpec(Model):
    kind: str = Field(description="NF kind: " + " | ".join(CHAINABLE))
    config: dict = Field(description="that kind's config; netns and interfaces come from the chain")


class ChainConfig(Model):
    """A chain: NFs run in list order on every interface of the chain (configs/chain.yaml)."""
    chain: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$", description="chain name (its pins' dir)")
    netns: Optional[str] = None
    interfaces: list[str] = Field(min_length=1)
    attach: AttachMode = AttachMode.auto
    # the members' fields each change through their own channel (plan_apply)
    nfs: Annotated[list[MemberSpec], PROGRAM] = Field(min_length=1, max_length=SLOTS)

    @property
    def name(self) -> str:
        return self.chain

    @model_validator(mode="after")
    def _members(self):
        self.members()
        return self

    def members(self) -> list[tuple]:
        """[(Kind, validated member config)], netns forced to the chain's; errors carry
        nfs[i].config.<field> paths."""
        from nf.nfs import registry
        out, errors, names = [], [], {self.chain}
        for i, m in enumerate(self.nfs):
            if m.kind not in CHAINABLE:
                errors.append((f"nfs[{i}].kind", f"{m.kind!r} cannot join a chain (chainable: "
                                                 f"{', '.join(CHAINABLE)})"))
                continue
            k = registry.get(m.kind)
            data = {**m.config, "netns": self.netns}
            if m.kind in _OWN_IFACES:
                if m.config.get("interfaces"):
                    errors.append((f"nfs[{i}].config.interfaces", "a chain member runs on the chain's "
                                                                  "interfaces; leave it out"))
                data["interfaces"] = []
            try:
                cfg = k.validate(data, f"nfs[{i}]")
            except ConfigError as e:
                errors += [(f"nfs[{i}].config.{p}" if p else f"nfs[{i}].config", msg) for p, msg in e.errors]
                continue
            if m.kind == "router" and sorted(p.name for p in cfg.interfaces) != sorted(self.interfaces):
                errors.append((f"nfs[{i}].config.interfaces", "a router in a chain has exactly the "
                                                              f"chain's interfaces ({', '.join(self.interfaces)})"))
            if m.kind == "l2_switch" and sorted(p.name for p in cfg.ports) != sorted(self.interfaces):
                errors.append((f"nfs[{i}].config.ports", "a switch in a chain has exactly the chain's "
                                                         f"interfaces as ports ({', '.join(self.interfaces)})"))
            if cfg.name in names:
                errors.append((f"nfs[{i}].config.name", f"instance name {cfg.name!r} used twice"))
            names.add(cfg.name)
            out.append((k, cfg))
        if errors:
            raise ValueError("; ".join(f"{p}: {m}" for p, m in errors))
        return out


def _l2_member(cfg, chain: Chain, position: int):
    from nf.nfs.l2_switch import L2Switch

    class ChainedL2Switch(L2Switch):
        """The controller's own fill; the chainable object; no attach of its own."""

        def load(self, pin: bool = False):
            obj = chain.member("chain/l2_switch_chain", position)
            try:
                obj.map("fdb").set_max_entries(self.cfg.fdb_size)
                self.pin_dir.mkdir(parents=True, exist_ok=True)
                # not the chain's PROG_ARRAY: the chain's pin alone decides its lifetime
                obj.pin_maps(self.pin_dir, [n for n in obj.maps if n != CHAIN_MAP and "." not in n])
                obj.load()
            except BaseException:
                obj.close()
                raise
            return obj

        def _attach(self) -> None:
            pass

        def resolve_variant(self):
            from nf.config.l2_switch import Variant
            return Variant.pure          # the chainable build is the pure-eBPF FDB

    sw = ChainedL2Switch(cfg, keep=True)
    sw.up()
    return sw.obj, "xdp_l2sw", sw


def _filter_member(cfg, chain: Chain, position: int):
    from nf.nfs.filter import PROG, Filter
    f = Filter(cfg)
    obj = f.load(chain, position)
    return obj, PROG, None


def _sketch_member(cfg, chain: Chain, position: int):
    """The controller's own up(pin=True) (banks, maps, prog pinned), on the chainable object,
    with no interface of its own (the chain's dispatcher holds them)."""
    from nf.nfs.sketch import PROG, Sketch

    class ChainedSketch(Sketch):
        def _open_object(self):
            return chain.member(SKETCH_CHAIN, position)

    sk = ChainedSketch(cfg)
    sk.up(pin=True)
    sk._keep = True                  # leaving it (up_chain's finally) releases fds, keeps pins
    return sk.obj, PROG, sk


def _ft_member(cfg, chain: Chain, position: int):
    """The controller's own up(pin=True) (maps, datapath + control programs, rules) on the
    chainable object; no interface of its own."""
    from nf.nfs.flow_table import PROG, FlowTable

    class ChainedFlowTable(FlowTable):
        def _open_object(self):
            return chain.member(FT_CHAIN, position)

    ft = ChainedFlowTable(cfg)
    ft.up(pin=True)
    ft._keep = True
    return ft.obj, PROG[ft.variant], ft


def _rt_member(cfg, chain: Chain, position: int):
    """The controller's own up(pin=True) (maps, programs, routes, neighbours, saved state) on
    the chainable object; the chain's dispatcher holds the router's ports."""
    from nf.nfs.router import PROGRAM, Router

    class ChainedRouter(Router):
        def _open_object(self):
            return chain.member(RT_CHAIN, position)

        def attach(self, mode=None) -> None:
            pass

    r = ChainedRouter(cfg)
    r.up(pin=True)
    r.pin_dir = None                 # leaving it (close) keeps the pins
    return r.obj, PROGRAM, r


SKETCH_CHAIN = "sketch/sketch_chain"
FT_CHAIN = "flow_table/flow_table_chain"
RT_CHAIN = "router/router_chain"
MEMBER_UP = {"l2_switch": _l2_member, "filter": _filter_member, "sketch": _sketch_member,
             "flow_table": _ft_member, "router": _rt_member}


def up_chain(cfg: ChainConfig) -> dict:
    """Load every member into a new chain, pin the chain's maps, attach the dispatcher on each
    interface through pinned links. On any error everything made so far is torn down."""
    from nf.bpf import pin as _pin
    from nf.deploy import cleanup_pins
    from nf.net import netns
    from nf.net.iface import resolve

    members = cfg.members()
    d = _pin.instance_dir(cfg.chain)
    if any(d.iterdir()):
        raise ConfigError(cfg.chain, [("chain", f"pins already exist in {d}; `nf down {cfg.chain}` first")])
    chain = Chain()
    made, held = [], []
    try:
        chain.slots.pin(d / CHAIN_MAP)
        chain.obj.map("chain_stats").pin(d / "chain_stats")
        for pos, (k, mcfg) in enumerate(members, 1):
            obj, prog, ctl = MEMBER_UP[k.name](mcfg, chain, pos)
            made.append((k, mcfg))
            held.append((obj, prog, ctl))
        chain.install([obj.program(p) for obj, p, _ in held])
        (d / "links").mkdir(exist_ok=True)
        from nf.bpf import XdpMode
        mode = XdpMode[cfg.attach.upper()]
        with netns.enter(cfg.netns):
            for itf in cfg.interfaces:
                chain.attach(resolve(itf).ifindex, mode, pin=d / "links" / itf).close()
    except BaseException:
        cleanup_pins(cfg.chain)
        for k, mcfg in made:
            cleanup_pins(mcfg.name)
        raise
    finally:
        for obj, _, ctl in held:
            if ctl is not None:
                ctl.__exit__(None, None, None)
            else:
                obj.close()
        chain.close()
    return {"variant": "chain", "members": [{"name": m.name, "kind": k.name, "position": i}
                                            for i, (k, m) in enumerate(made, 1)]}


def chain_stats(pin_dir) -> dict[str, int]:
    from nf.bpf import Map
    m = Map.from_pin(pin_dir / "chain_stats")
    try:
        per = m.typed(ctypes.c_uint32, ChainStats).lookup_percpu(0)
        return {"entered": sum(s.entered for s in per), "empty": sum(s.empty for s in per)}
    finally:
        m.close()


# ---- apply: reorder / insert / remove members, counters kept -------------------------------------
def _l2_member_reload(cfg, chain: Chain, position: int):
    """The switch's program again, for a new position, on its pinned (already filled) maps."""
    from nf.bpf.pin import instance_dir
    d = instance_dir(cfg.name, create=False)
    obj = chain.member("chain/l2_switch_chain", position)
    try:
        obj.map("fdb").set_max_entries(cfg.fdb_size)
        with contextlib.ExitStack() as es:
            reuse_pinned(obj, d, es)
            obj.load()
    except BaseException:
        obj.close()
        raise
    return obj, "xdp_l2sw", None


def _sketch_member_reload(cfg, chain: Chain, position: int):
    """The sketch's program again, for a new position, on its pinned banks and maps (by fd):
    the current epoch's counts, candidates and counters carry on."""
    from nf.bpf import Map
    from nf.bpf.pin import instance_dir
    from nf.nfs import sketch as S
    from nf.net.iface import ifindex
    d = instance_dir(cfg.name, create=False)
    variant = S.Sketch.resolve_variant(cfg.variant)
    rd = ifindex(cfg.redirect_to, cfg.netns) if cfg.redirect_to else 0
    obj = chain.member(SKETCH_CHAIN, position)
    try:
        obj.set_rodata("sk_cfg", S.make_cfg(cfg, variant, rd))
        obj.set_rodata("sk_log2_tab", (ctypes.c_uint32 * S.SKETCH_LOG2_TAB)(*S.log2_table(S.SKETCH_LOG2_TAB)))
        obj.map("sk_cand").set_max_entries(2 * cfg.candidates)
        with contextlib.ExitStack() as es:
            bank0 = es.enter_context(contextlib.closing(Map.from_pin(d / "bank0")))
            obj.map("sk_active").set_inner_map(bank0)
            for n in S.MAPS:
                obj.map(n).reuse(es.enter_context(contextlib.closing(Map.from_pin(d / n))))
            obj.program(S.PROG_HASHCHECK).set_autoload(False)
            if not (cfg.nitro.enabled and variant == S.Variant.enetstl):
                obj.program(S.PROG_POOL).set_autoload(False)
            obj.load()
    except BaseException:
        obj.close()
        raise
    return obj, S.PROG, None


def _ft_member_reload(cfg, chain: Chain, position: int):
    """The table's programs again, for a new position; load() reuses its pinned maps (flows,
    counters) through pin_maps. The control program pin stays the first one (same maps)."""
    from nf.bpf.pin import instance_dir
    from nf.nfs.flow_table import PROG, FlowTable

    class ChainedFlowTable(FlowTable):
        def _open_object(self):
            return chain.member(FT_CHAIN, position)

    ft = ChainedFlowTable(cfg)
    ft.pin_dir = instance_dir(cfg.name, create=False)
    ft._keep = True
    try:
        ft.load()
    except BaseException:
        ft.release()
        raise
    return ft.obj, PROG[ft.variant], ft


def _rt_member_reload(cfg, chain: Chain, position: int):
    """The router's program again, for a new position, on its pinned maps reused by fd (the
    kernel's DEVMAP flags defeat libbpf's pinned-map check; see registry._l2_reload): routes,
    neighbours, ports and counters carry on."""
    from nf.bpf.pin import instance_dir
    from nf.nfs.router import PROGRAM, Router
    d = instance_dir(cfg.name, create=False)
    r = Router(cfg)
    obj = chain.member(RT_CHAIN, position)
    try:
        r.configure(obj)
        with contextlib.ExitStack() as es:
            reuse_pinned(obj, d, es)
            obj.load()
    except BaseException:
        obj.close()
        raise
    finally:
        r.close()
    return obj, PROGRAM, None


MEMBER_RELOAD = {"l2_switch": _l2_member_reload, "filter": _filter_member,
                 "sketch": _sketch_member_reload, "flow_table": _ft_member_reload,
                 "router": _rt_member_reload}


# ---- apply: a kept member's config changes -------------------------------------------------------
# Each field of a kept member's config changes through the channel its config model declares on
# it (nf.config.Channel): "runtime" through the member's controller on its pinned maps (rules,
# routes, neighbours: each write is seen by the next frame; a router's routes change with one bank
# flip); "new program": the field is rodata, so the member's program is loaded again on its
# pinned maps (counters, flows, banks, routes kept) and put into its slot of the chain's
# PROG_ARRAY - one map update: a frame runs the old program or the new one, the other members are
# not touched; anything else (sizes, seeds, key layout, variant, interfaces) would lose or misread
# the member's state: refused, nothing changed.
class NeedsRedeploy(ValueError):
    """A chain apply would have to change a field that only down + up can change."""


class MemberChange:
    """A kept member whose config changed: what changes and how."""

    def __init__(self, name, kind, position, old, new, changes):
        self.name, self.kind, self.position = name, kind, position
        from nf.config import Channel, channel_of
        self.old, self.new, self.changes = old, new, changes
        how = {channel_of(type(new), p) for p, _, _ in changes}
        self.runtime = Channel.runtime in how
        self.program = Channel.program in how


def plan_apply(rec, new: ChainConfig) -> tuple[list, list[MemberChange], list[str]]:
    """What moving the deployed chain ``rec`` to ``new`` does, touching nothing: (members,
    changes of kept members, one line per change for the operator). NeedsRedeploy names every
    member field that cannot change in place."""
    import json
    from nf import deploy
    from nf.config import Channel, channel_of, diff
    old_members = {m["name"]: m for m in rec.extra.get("members", [])}
    old_kind = {m["config"]["name"]: m["kind"] for m in rec.config["nfs"]}
    members = new.members()
    plan, lines, bad = [], [], []
    for pos, (k, m) in enumerate(members, 1):
        if m.name not in old_members:
            lines.append(f"{m.name}: new {k.name} at position {pos}")
            continue
        was = old_members[m.name]["position"]
        if was != pos:
            lines.append(f"{m.name}: position {was} -> {pos}")
        if old_kind.get(m.name, k.name) != k.name:
            bad.append(f"{m.name} (kind {old_kind[m.name]} -> {k.name})")
            continue
        mrec = deploy.read(m.name)
        if mrec is None:
            raise NeedsRedeploy(f"member {m.name} has no deployment record; `nf down {rec.name}` "
                                "+ `nf up`")
        changes = diff(k.validate(mrec.config, m.name).model_dump(mode="json"),
                       m.model_dump(mode="json"))
        for p, a, b in changes:
            how = channel_of(type(m), p)
            lines.append(f"{m.name}.{p}: {json.dumps(a)} -> {json.dumps(b)}  [{how.value}]")
            if how == Channel.redeploy:
                bad.append(f"{m.name}.{p.split('.')[0].split('[')[0]}")
        if changes:
            plan.append(MemberChange(m.name, k.name, pos, k.validate(mrec.config, m.name), m, changes))
    kept = {m.name for _, m in members}
    lines += [f"{n}: removed" for n in old_members if n not in kept]
    if bad:
        raise NeedsRedeploy(f"{rec.name}: changing {', '.join(sorted(set(bad)))} needs `nf down "
                            f"{rec.name}` + `nf up` (state would be lost); nothing changed")
    return members, plan, lines


def router_runtime(r, old, new) -> list[str]:
    """Neighbours and routes of an open router controller ``r`` (opened with ``new``) moved from
    ``old`` to ``new``: new neighbours first (a new next hop has its MAC before a route uses it),
    then every config route in one new table and one bank flip (routes added at runtime with
    `nf routes add` stay unless the config names their prefix), then removed neighbours."""
    import numpy as np
    from nf.config.router import port_of_gateway
    from nf.config.router import check
    from nf.routes import RouteSet, parse_prefix, parse_route_lines
    # targets resolve against the new config's groups (its interfaces are the old ones: a
    # change there is not a runtime change)
    r.cfg = check(new)
    r._gnames = {g.name: g for g in new.groups}
    done = []
    key = lambda n: (n.address, n.dev)   # noqa: E731
    o = {key(n): n.mac.lower() for n in old.neighbours}
    nn = {key(n): n.mac.lower() for n in new.neighbours}
    for (addr, dev), mac in nn.items():
        if o.get((addr, dev)) != mac:
            port = port_of_gateway(new, addr, dev)
            r.set_neighbour(r.by_name[port].idx, addr, mac, static=True)
            done.append(f"neighbour {addr} -> {mac} ({port})")
    ro = {x.prefix: x.target() for x in old.routes}
    rn = {x.prefix: x.target() for x in new.routes}
    if ro != rn or old.groups != new.groups:
        u = r.user
        gone4, gone6 = [], set()
        for p in ro:
            fam, a, n = parse_prefix(p)
            if fam == 4:
                gone4.append((a << 6) | n)
            else:
                gone6.add((a, n))
        k4 = (u.v4_addr.astype(np.uint64) << np.uint64(6)) | u.v4_len.astype(np.uint64)
        keep = ~np.isin(k4, np.array(gone4, np.uint64))
        base = RouteSet(u.v4_addr[keep], u.v4_len[keep], u.v4_gid[keep],
                        [x for x in u.v6 if (x[0], x[1]) not in gone6])
        add = parse_route_lines([f"{p} {t}" for p, t in rn.items()], r._resolver(), "<config routes>")
        r.publish(base.merged(add))           # one flip: the old table or the new one
        for p in ro.keys() - rn.keys():
            done.append(f"route {p} removed")
        for p, t in rn.items():
            if ro.get(p) != t:
                done.append(f"route {p} {t}")
        if old.groups != new.groups:
            done.append("groups changed (routes using them re-resolved)")
    for (addr, dev) in o.keys() - nn.keys():
        r.delete_neighbour(addr, dev)
        done.append(f"neighbour {addr} removed")
    return done


def _member_runtime(c: MemberChange) -> list[str]:
    """A kept member's runtime fields through its own controller, opened on its pins with the
    new config (sizes are equal: plan_apply refused anything else)."""
    from nf.nfs import registry
    from nf import deploy
    if c.kind == "router":
        from nf.nfs.router import Router
        r = Router.open_pinned(c.new, c.name)
        try:
            return router_runtime(r, c.old, c.new)
        finally:
            r.release()
    k = registry.get(c.kind)
    mrec = deploy.read(c.name)
    mrec.config = c.new.model_dump(mode="json")
    with k.open(mrec) as h:
        return k.runtime(h, c.old, c.new)


def reuse_pinned(obj, d, es) -> None:
    """Before load: every map of ``obj`` with a pin in ``d`` becomes that pinned map, reused by
    fd (bpf_map__reuse_fd), not through libbpf's pin_maps: the kernel adds BPF_F_RDONLY_PROG to
    every DEVMAP it creates, so libbpf 1.4's compatibility check of a pinned DEVMAP against the
    object fails ("parameter mismatch"). The chain's PROG_ARRAY is the chain's, never a member's;
    bpffs refuses dotted names (EPERM), so .rodata & co. are never pinned. ``es`` (an ExitStack)
    keeps the pinned fds open until the caller's load is done."""
    from nf.bpf import Map
    for n in obj.maps:
        if n != CHAIN_MAP and "." not in n and (d / n).exists():
            obj.map(n).reuse(es.enter_context(contextlib.closing(Map.from_pin(d / n))))


def swap_links(d, prog, netns_name: str | None) -> int:
    """bpf_link_update of every link pinned under ``d``/links to ``prog`` (in the deployment's
    netns): no instant without a program. Returns how many links were swapped."""
    from nf.net import netns
    links = sorted((d / "links").iterdir())
    with netns.enter(netns_name):
        for p in links:
            with contextlib.closing(Link.from_pin(p)) as link:
                link.update_program(prog)
    return len(links)


def _repin(path, prog) -> None:
    """Point a program pin at ``prog`` (pin a temporary, rename over: readers never miss it)."""
    tmp = path.parent / f"_tmp{os.getpid()}_{path.name}"
    if tmp.exists():
        tmp.unlink()
    prog.pin(tmp)
    os.rename(tmp, path)


def _repin_member(kind: str, name: str, obj, prog: str) -> None:
    """The member's own program pins (what its controller's queries run) follow its new program."""
    from nf.bpf.pin import instance_dir
    d = instance_dir(name, create=False)
    pins = {"sketch": {prog: "prog"}, "flow_table": {prog: "prog"},
            "router": {"xdp_router": "prog", "xdp_lookup_batch": "lookup"}}.get(kind, {})
    if kind == "flow_table":                 # the control program of the same variant
        from nf.nfs.flow_table import CTL, PROG
        pins[CTL[[v for v, n in PROG.items() if n == prog][0]]] = "ctl"
    for p, pin in pins.items():
        if (d / pin).exists():
            _repin(d / pin, obj.program(p))


class _PinnedSlots(Chain):
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


def _apply_in_place(new: ChainConfig, plan: list[MemberChange], progress=None) -> list[str]:
    """Same members in the same order: every new program is loaded first (a verifier error
    changes nothing), then runtime fields through the controllers, then each new program into
    its own slot. The dispatcher, its links and the unchanged members are not touched."""
    from nf.bpf.pin import instance_dir
    d = instance_dir(new.chain, create=False)
    say = progress or (lambda *a: None)
    slots = _PinnedSlots(d)
    held, log = [], []
    total = sum(c.program for c in plan) * 2 + sum(c.runtime for c in plan)
    step = 0
    try:
        for c in plan:
            if c.program:
                say(step, total, f"{c.name}: loading its new program")
                obj, prog, ctl = MEMBER_RELOAD[c.kind](c.new, slots, c.position)
                held.append((c, obj, prog, ctl))
                step += 1
        for c in plan:
            if c.runtime:
                say(step, total, f"{c.name}: changing it in place")
                log += [f"{c.name}: {line}" for line in _member_runtime(c)]
                step += 1
        for c, obj, prog, _ in held:
            say(step, total, f"{c.name}: replacing slot {c.position}")
            slots.replace(c.position, obj.program(prog))
            _repin_member(c.kind, c.name, obj, prog)
            log.append(f"{c.name}: program replaced in slot {c.position}, maps kept")
            step += 1
        say(total, total, "done")
    finally:
        for _, obj, _, ctl in held:
            if ctl is not None:
                ctl.__exit__(None, None, None)
            else:
                obj.close()
        slots.close()
    return log


def apply_chain(rec, new: ChainConfig, progress=None, rebuild: bool = False) -> list[str]:
    """Move a deployed chain to ``new``.

    Same members in the same order: only what changed changes (``_apply_in_place``). Otherwise
    (reorder, insert, remove): members kept are loaded again for their new positions on their
    own pinned maps (with their new config), new members come up fresh, then one new dispatcher
    is swapped into every interface's link with bpf_link_update; runtime changes of kept members
    go through their controllers; removed members go down after the swap. Interfaces and netns
    cannot change here; ``rebuild`` takes the second way even for the same order (`nf apply
    --reload`: every member's program again). ``progress(step, total, what)`` is told each stage."""
    from nf import deploy
    from nf.bpf import Map
    from nf.bpf import pin as _pin

    members, plan, _ = plan_apply(rec, new)
    say = progress or (lambda *a: None)
    old = {m["name"]: m for m in rec.extra.get("members", [])}
    old_order = [m["name"] for m in sorted(old.values(), key=lambda m: m["position"])]
    if [m.name for _, m in members] == old_order and not rebuild:
        log = _apply_in_place(new, plan, progress)
    else:
        changed = {c.name: c for c in plan}
        d = _pin.instance_dir(new.chain, create=False)
        with contextlib.closing(Map.from_pin(d / "chain_stats")) as st:
            chain = Chain(reuse={"chain_stats": st})
        held, fresh, log = [], [], []
        total = len(members) + 2
        try:
            for pos, (k, m) in enumerate(members, 1):
                say(pos - 1, total, f"{m.name}: loading for position {pos}")
                if m.name in old:
                    obj, prog, ctl = MEMBER_RELOAD[k.name](m, chain, pos)
                    log.append(f"{m.name}: position {old[m.name]['position']} -> {pos}"
                               if old[m.name]["position"] != pos else f"{m.name}: stays at {pos}")
                else:
                    obj, prog, ctl = MEMBER_UP[k.name](m, chain, pos)
                    fresh.append((k, m))
                    log.append(f"{m.name}: new {k.name} at position {pos}")
                held.append((obj, prog, ctl, k.name, m.name))
            for c in plan:                      # kept members' maps: seen by old and new chain
                if c.runtime:
                    log += [f"{c.name}: {line}" for line in _member_runtime(c)]
            say(len(members), total, "swapping the dispatcher")
            chain.install([obj.program(p) for obj, p, *_ in held])
            swap_links(d, chain.prog, new.netns)     # the swap: old chain or new, never mixed
            tmp = d / f"_tmp{os.getpid()}"
            chain.slots.pin(tmp)
            os.rename(tmp, d / CHAIN_MAP)                    # the old PROG_ARRAY's last pin goes
            for obj, prog, _, kind, name in held:
                if name in old:
                    _repin_member(kind, name, obj, prog)
                    if name in changed and changed[name].program:
                        log.append(f"{name}: new program, maps kept")
        except BaseException:
            from nf.deploy import cleanup_pins
            for _, m in fresh:
                cleanup_pins(m.name)
            raise
        finally:
            for obj, _, ctl, *_ in held:
                if ctl is not None:
                    ctl.__exit__(None, None, None)
                else:
                    obj.close()
            chain.close()
        say(total - 1, total, "removing dropped members")
    kept = {m.name for _, m in members}
    for name in old:
        if name not in kept:
            from nf.nfs import registry
            mrec = deploy.read(name)
            if mrec is not None:
                registry.get(mrec.kind).down(mrec)
            deploy.cleanup_pins(name)
            deploy.remove(name)
            log.append(f"{name}: removed")
    rec.extra["members"] = [{"name": m.name, "kind": k.name, "position": i}
                            for i, (k, m) in enumerate(members, 1)]
    for k, m in members:                                  # member records follow
        mrec = deploy.read(m.name) or deploy.Record(name=m.name, kind=k.name, source=rec.source,
                                                    config=m.model_dump(mode="json"), netns=new.netns,
                                                    mode=new.attach, variant="pure", status="up")
        mrec.config = m.model_dump(mode="json")
        mrec.interfaces = list(new.interfaces)
        mrec.chain = {"name": new.chain, "position": [x["position"] for x in rec.extra["members"]
                                                      if x["name"] == m.name][0]}
        mrec.status = "up"
        deploy.write(mrec)
    return log or ["nothing changed"]
