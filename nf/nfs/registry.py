"""Registry of NF kinds: the one place where the CLI meets each controller.

    kind = registry.get("l2_switch")             # or registry.detect(path, data)
    cfg = kind.load(path)                         # ConfigError with field paths
    kind.preflight(cfg)                           # system checks (interfaces exist...), nothing loaded
    info = kind.up(cfg)                           # {"variant": ..., "object_sha": ...}; pins made
    with kind.open(rec) as h: kind.stats(h); kind.verbs["fdb"](h)
    kind.down(rec)

Adapters are deliberately thin: each one only translates between the CLI's vocabulary and a
controller's methods. What a controller must offer to be *deployable* from the CLI (its state
outliving the `nf` process): pins under ``nf.bpf.pin.instance_dir(name)`` for every map and
XDP link, a way to re-open a deployment from those pins (``L2Switch.attach``,
``Sketch.open_pinned``), a teardown from the pins alone (any process, any netns, partial pins
after a crash) and per-group counter dicts for `nf stats`. Controllers without that are
validated, described and schema'd here but refused by ``nf up`` with a clear reason, never
half-deployed.
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nf.config import ConfigError, Model, load as _load, validate as _validate


@dataclass
class Kind:
    name: str
    summary: str
    model_path: str                                  # "module:Class" (lazy: controllers import BPF bits)
    deployable: bool = False
    object: str = ""                                 # built BPF object (apply reloads when it changed)
    why_not: str = ""
    verbs: dict[str, Callable[[Any], list[dict]]] = field(default_factory=dict)
    # hooks (None: generic behaviour)
    _load: Callable[[Path], Model] | None = None
    _preflight: Callable[[Model], None] | None = None
    _up: Callable[[Model], dict] | None = None
    _down: Callable[[Any], None] | None = None
    _open: Callable[[Any], Any] | None = None
    _stats: Callable[[Any], dict[str, dict[str, int]]] | None = None
    _reload: Callable[[Any, Model], dict] | None = None
    _runtime: Callable[[Any, Model, Model], list[str]] | None = None

    @property
    def model(self) -> type[Model]:
        mod, cls = self.model_path.split(":")
        return getattr(__import__(mod, fromlist=[cls]), cls)

    def load(self, path: str | Path) -> Model:
        return self._load(Path(path)) if self._load else _load(path, self.model)

    def validate(self, data: dict, source: str = "<config>") -> Model:
        return _validate(data, self.model, source)

    def instance_name(self, cfg: Model, path: str | Path | None = None) -> str:
        n = getattr(cfg, "name", None)
        return n or (Path(path).stem if path else self.name)

    def interfaces(self, cfg: Model) -> list[str]:
        if hasattr(cfg, "ports"):
            return [p.name for p in cfg.ports]
        itf = getattr(cfg, "interfaces", [])
        return [i if isinstance(i, str) else i.name for i in itf]

    def netns(self, cfg: Model) -> str | None:
        return getattr(cfg, "netns", None)

    def mode(self, cfg: Model) -> str:
        m = getattr(cfg, "attach", None) or "auto"
        return getattr(m, "value", str(m))

    def preflight(self, cfg: Model) -> None:
        if self._preflight:
            self._preflight(cfg)

    def up(self, cfg: Model) -> dict:
        if not self.deployable:
            raise Undeployable(self.name, self.why_not)
        return self._up(cfg)

    def down(self, rec) -> None:
        self._down(rec)

    @contextlib.contextmanager
    def open(self, rec):
        h = self._open(rec)
        try:
            yield h
        finally:
            close = getattr(h, "__exit__", None)
            if close:
                close(None, None, None)

    def stats(self, h) -> dict[str, dict[str, int]]:
        return self._stats(h) if self._stats else {}

    def reload(self, rec, cfg: Model) -> dict:
        return self._reload(rec, cfg)

    def runtime(self, h, old: Model, new: Model) -> list[str]:
        return self._runtime(h, old, new) if self._runtime else []


class Undeployable(RuntimeError):
    def __init__(self, kind: str, why: str):
        self.kind = kind
        super().__init__(f"{kind} cannot be deployed by nf yet: {why}")


def object_sha(name: str) -> str:
    """Digest of a built BPF object (rebuilding it if stale): apply reloads when it changed."""
    from nf.bpf.build import build
    return hashlib.sha256(Path(build(name)).read_bytes()).hexdigest()[:16]


def _rec_cfg(rec) -> Model:
    """A deployment record's config, validated again by its kind's model."""
    return get(rec.kind).validate(rec.config, rec.name)


# ---- l2_switch ---------------------------------------------------------------------------------
def _l2_preflight(cfg) -> None:
    from nf.nfs.l2_switch import L2Switch
    sw = L2Switch(cfg)
    sw.check()
    sw.resolve_variant()


def _l2_object(variant: str) -> str:
    from nf.nfs import l2_switch as L2
    return getattr(L2, "OBJECT_ENETSTL", L2.OBJECT) if variant == "enetstl" else L2.OBJECT


def _l2_up(cfg) -> dict:
    from nf.nfs.l2_switch import L2Switch
    sw = L2Switch(cfg, keep=True)
    with sw:
        sw.up()
        variant = sw.variant.value
    return {"variant": variant, "object_sha": object_sha(_l2_object(variant))}


def _l2_down(rec) -> None:
    from nf.nfs.l2_switch import L2Switch
    L2Switch(_rec_cfg(rec)).down()


def _l2_open(rec):
    from nf.nfs.l2_switch import L2Switch
    return L2Switch.attach(_rec_cfg(rec))


def _l2_fdb(sw) -> list[dict]:
    return [{"mac": e.mac, "vlan": e.vlan, "port": e.port, "static": e.static,
             "age_s": round(e.age_s, 1), "expired": e.expired} for e in sw.fdb()]


def _l2_reload(rec, cfg) -> dict:
    """New program on the same pinned maps (reused by fd: nf.chain.reuse_pinned), swapped into
    every pinned link with one bpf_link_update each: no instant without a program, FDB and
    counters untouched. Sizes/rodata come from the deployed config (fdb_size is not a reload
    field)."""
    from nf.bpf import BpfObject
    from nf.bpf.build import build
    from nf.chain import reuse_pinned, swap_links
    from nf.nfs import l2_switch as L2
    sw = L2.L2Switch(cfg, keep=True)
    obj = BpfObject.open(build(_l2_object(rec.variant)))
    try:
        L2.size_object(obj, L2.Variant(rec.variant), cfg.fdb_size)
        with contextlib.ExitStack() as es:
            reuse_pinned(obj, sw.pin_dir, es)
            obj.load()
        n = swap_links(sw.pin_dir, obj.program(L2.PROG_INGRESS), cfg.netns)
    finally:
        obj.close()                 # the links hold the new program, the pins the maps
    return {"object_sha": object_sha(_l2_object(rec.variant)), "replaced": n}


def _l2_runtime(sw, old, new) -> list[str]:
    done = []
    if old.aging_time != new.aging_time:
        sw.set_aging(new.aging_time)
        done.append(f"aging_time {old.aging_time:g} -> {new.aging_time:g} s")
    o = {(e.mac, e.vlan): e.port for e in old.static_entries}
    n = {(e.mac, e.vlan): e.port for e in new.static_entries}
    for k in o.keys() - n.keys():
        sw.fdb_delete(*k)
        done.append(f"static entry {k[0]} vlan {k[1]} removed")
    for k, port in n.items():
        if o.get(k) != port:
            sw.fdb_add(k[0], k[1], port)
            done.append(f"static entry {k[0]} vlan {k[1]} -> {port}")
    return done


def _l2_stats(sw) -> dict[str, dict[str, int]]:
    return sw.stats()


# ---- filter (the base NF) -----------------------------------------------------------------------
def _filter_preflight(cfg) -> None:
    from nf.nfs.filter import Filter
    Filter(cfg).check()


def _filter_up(cfg) -> dict:
    from nf.nfs.filter import Filter
    Filter(cfg).up()
    return {"variant": "pure", "object_sha": object_sha("base/base")}


def _filter_down(rec) -> None:
    from nf.nfs.filter import Filter
    Filter(_rec_cfg(rec)).down()


def _filter_open(rec):
    from nf.nfs.filter import Filter
    return Filter(_rec_cfg(rec))


def _filter_reload(rec, cfg) -> dict:
    """New rules are rodata: a new program (same pinned stats map) swapped into every pinned
    link with bpf_link_update; counters continue."""
    from nf.chain import swap_links
    from nf.nfs.filter import PROG, Filter
    f = Filter(cfg)
    obj = f.load()                  # pin_maps reuses the pinned base_stats
    try:
        n = swap_links(f.pin_dir, obj.program(PROG), cfg.netns)
    finally:
        obj.close()
    return {"replaced": n, "object_sha": object_sha("base/base")}


# ---- chain -------------------------------------------------------------------------------------
def _chain_preflight(cfg) -> None:
    _check_system(cfg, [(f"interfaces[{i}]", n) for i, n in enumerate(cfg.interfaces)])


def _chain_up(cfg) -> dict:
    from nf.chain import up_chain
    return up_chain(cfg)


def _chain_down(rec) -> None:
    """Dispatcher links and the PROG_ARRAY first (the interfaces are free at once), then each
    member through its own kind, then the members' records."""
    from nf import deploy
    deploy.cleanup_pins(rec.name)
    for m in rec.extra.get("members", []):
        mrec = deploy.read(m["name"])
        try:
            if mrec is not None:
                get(mrec.kind).down(mrec)
        finally:
            deploy.cleanup_pins(m["name"])
            deploy.remove(m["name"])


def _chain_apply(rec, cfg) -> dict:
    from nf.chain import apply_chain
    return {"log": apply_chain(rec, cfg)}


class _ChainHandle:
    def __init__(self, rec):
        self.rec = rec


def _chain_stats(h) -> dict[str, dict[str, int]]:
    from nf.chain import chain_stats
    return {"dispatcher": chain_stats(h.rec.pin_dir)}


# ---- shared by the kinds below -------------------------------------------------------------------
def _check_system(cfg, ifaces: list[tuple[str, str]]) -> None:
    """netns exists and every (field path, interface) resolves in it: ConfigError naming fields."""
    from nf.net.iface import InterfaceError, resolve
    from nf.net.netns import exists
    src = getattr(cfg, "name", "config")
    if cfg.netns is not None and not exists(cfg.netns):
        raise ConfigError(src, [("netns", f"no network namespace {cfg.netns!r}")])
    errors = []
    for where, n in ifaces:
        try:
            resolve(n, cfg.netns)
        except InterfaceError as e:
            errors.append((where, f"unknown interface: {e}"))
    if errors:
        raise ConfigError(src, errors)


# ---- sketch ------------------------------------------------------------------------------------
def _sk_preflight(cfg) -> None:
    from nf.nfs.sketch import Sketch
    _check_system(cfg, [(f"interfaces[{i}]", n) for i, n in enumerate(cfg.interfaces)]
                  + ([("redirect_to", cfg.redirect_to)] if cfg.redirect_to else []))
    Sketch.resolve_variant(cfg.variant)


def _sk_up(cfg) -> dict:
    from nf.nfs.sketch import Sketch
    sk = Sketch(cfg).up(pin=True)
    variant = sk.variant.value
    sk.release()                      # the pins hold the deployment now
    return {"variant": variant, "object_sha": object_sha("sketch/sketch")}


def _sk_down(rec) -> None:
    from nf.nfs.sketch import Sketch
    Sketch.remove_pinned(rec.name)


def _sk_open(rec):
    from nf.nfs.sketch import Sketch
    return Sketch.open_pinned(_rec_cfg(rec), rec.name)


def _sk_topk(sk, k: int | None = None, flip: bool = False) -> list[dict]:
    """Top flows of the current epoch (or, with ``flip``, of the epoch this call closes)."""
    from nf.nfs.sketch import decode_key
    if flip:
        r = sk.flip(keep_snapshot=False)
        top, heavy, ep = r.top[:k] if k else r.top, {key for key, _ in r.heavy}, r.epoch
    else:
        snap = sk.snapshot()
        top = sk.topk(k, snap=snap)
        heavy, ep = {key for key, _ in sk.heavy_hitters(snap=snap)}, snap.epoch
    out = []
    for key, est in top:
        flow = decode_key(sk.cfg.key, key)
        out.append({"flow": " ".join(map(str, flow)) if isinstance(flow, tuple) else flow,
                    "estimate": int(est), "heavy": key in heavy, "epoch": ep})
    return out


def _sk_reload(rec, cfg) -> dict:
    """threshold / action / redirect_to are rodata: a new program on the pinned banks and maps,
    swapped into each pinned link (Sketch.reload_pinned)."""
    from nf.nfs.sketch import Sketch
    n = Sketch.reload_pinned(cfg, rec.name, rec.variant)
    return {"replaced": n, "object_sha": object_sha("sketch/sketch")}


def _sk_runtime(sk, old, new) -> list[str]:
    return [f"{f} {getattr(old, f)} -> {getattr(new, f)} (controller side)"
            for f in ("topk", "epoch_s", "history") if getattr(old, f) != getattr(new, f)]


# ---- flow table --------------------------------------------------------------------------------
def _ft_preflight(cfg) -> None:
    from nf.nfs.flow_table import FlowTable
    _check_system(cfg, [(f"interfaces[{i}]", n) for i, n in enumerate(cfg.interfaces)]
                  + ([("default_port", cfg.default_port)] if cfg.default_port else [])
                  + [(f"rules[{i}].port", r.port) for i, r in enumerate(cfg.rules) if r.port])
    FlowTable(cfg).resolve_variant()


def _ft_up(cfg) -> dict:
    from nf.models.flow_table import OBJECT
    from nf.nfs.flow_table import FlowTable
    ft = FlowTable(cfg).up(pin=True)
    variant = ft.variant.value
    ft.release()
    return {"variant": variant, "object_sha": object_sha(OBJECT)}


def _ft_down(rec) -> None:
    from nf.nfs.flow_table import FlowTable
    FlowTable.remove_pinned(rec.name)


def _ft_open(rec):
    from nf.nfs.flow_table import FlowTable
    return FlowTable.open_pinned(_rec_cfg(rec), rec.name)


def _ft_rule(ft, rule):
    """(Flow, action, port ifindex) of a validated config Rule, ports resolved in the netns."""
    from nf.config.flow_table import Action as CA
    from nf.models.flow_table import Action, Flow
    from nf.net.iface import ifindex
    port = ifindex(rule.port, ft.cfg.netns) if rule.port else 0
    act = {CA.pass_: Action.PASS, CA.drop: Action.DROP, CA.redirect: Action.REDIRECT}[rule.action]
    return Flow(rule.src, rule.dst, rule.sport, rule.dport, rule.proto), act, port


def _ft_flows(ft, op: str = "list", rule=None) -> list[dict]:
    """list: every entry; add: insert (or replace) a static flow; del: remove one."""
    from nf.models.flow_table import Flags
    if op == "add":
        flow, act, port = _ft_rule(ft, rule)
        w = ft.insert(flow, act, port, update=True)
        return [{"added": rule.text(), "bucket": w.bucket, "slot": w.slot, "moves": w.moves}]
    if op == "del":
        flow, _, _ = _ft_rule(ft, rule)
        if not ft.delete(flow):
            raise KeyError(f"{ft.cfg.name}: no flow {rule.text().rsplit(' ', 1)[0]}")
        return [{"deleted": rule.text().rsplit(" ", 1)[0]}]
    return [{"flow": f"{e.flow.proto} {e.flow.src}:{e.flow.sport} -> {e.flow.dst}:{e.flow.dport}",
             "action": e.action.name.lower(), "port": e.port, "packets": e.packets,
             "bytes": e.bytes, "static": Flags.STATIC in e.flags} for e in ft.dump()]


def _ft_reload(rec, cfg) -> dict:
    """learn / default actions / max_search / search_budget are rodata: the table's programs
    again on its pinned maps (FlowTable.load reuses them through pin_maps: flows, counters and
    the table's key carry on), swapped into each pinned link; the prog and ctl pins follow."""
    from nf.bpf.pin import instance_dir
    from nf.chain import _repin, swap_links
    from nf.models.flow_table import OBJECT
    from nf.nfs.flow_table import FlowTable
    ft = FlowTable(cfg)
    ft.pin_dir = instance_dir(rec.name, create=False)
    ft._keep = True
    try:
        ft.load()
        n = swap_links(ft.pin_dir, ft.prog, cfg.netns)
        _repin(ft.pin_dir / "prog", ft.prog)
        _repin(ft.pin_dir / "ctl", ft.ctl_prog)
    finally:
        ft.release()
    return {"replaced": n, "object_sha": object_sha(OBJECT)}


def _ft_runtime(ft, old, new) -> list[str]:
    """Static rules change in place through the control program (traffic keeps flowing)."""
    done = []
    key = lambda r: (r.src, r.dst, r.proto, r.sport, r.dport)   # noqa: E731
    o = {key(r): r for r in old.rules}
    n = {key(r): r for r in new.rules}
    for k in o.keys() - n.keys():
        flow, _, _ = _ft_rule(ft, o[k])
        ft.delete(flow)
        done.append(f"rule removed: {o[k].text()}")
    for k, r in n.items():
        if k not in o or o[k] != r:
            flow, act, port = _ft_rule(ft, r)
            ft.insert(flow, act, port, update=True)
            done.append(f"rule set: {r.text()}")
    if old.idle_timeout != new.idle_timeout:
        done.append(f"idle_timeout {old.idle_timeout:g} -> {new.idle_timeout:g} s (controller side)")
    return done


# ---- router ------------------------------------------------------------------------------------
def _rt_preflight(cfg) -> None:
    from nf.nfs.router import Router
    _check_system(cfg, [(f"interfaces[{i}].name", itf.name) for i, itf in enumerate(cfg.interfaces)
                        if itf.ifindex is None])
    Router(cfg).close()            # every route target resolves (RouteError names the route)


def _rt_variant(cfg) -> str:
    from nf.nfs.sketch import module_present
    return "enetstl" if cfg.variant != "pure" and module_present() else "pure"


def _rt_up(cfg) -> dict:
    from nf.nfs.router import OBJECT, Router
    r = Router(cfg).up(pin=True)
    n4, n6 = len(r.user.v4_addr), len(r.user.v6)
    r.release()
    return {"variant": _rt_variant(cfg), "object_sha": object_sha(OBJECT), "routes": n4 + n6}


def _rt_down(rec) -> None:
    from nf.nfs.router import Router
    Router.remove_pinned(rec.name)


def _rt_open(rec):
    from nf.nfs.router import Router
    return Router.open_pinned(_rec_cfg(rec), rec.name)


def _rt_routes(r, op: str = "list", prefix: str | None = None, target: str | None = None,
               file: str | None = None, limit: int | None = None, progress=None) -> list[dict]:
    """list | add PREFIX TARGET | del PREFIX | replace FILE (built into the idle bank, one flip).
    ``progress(step, total, what)`` is told each stage of a replace."""
    from nf.routes import check_v4, read_route_file
    if op == "add":
        r.add_route(prefix, target)
        return [{"added": prefix, "target": r.target_text(r.resolve_target(target))}]
    if op == "del":
        if not r.delete_route(prefix):
            raise KeyError(f"{r.name}: no route {prefix}")
        return [{"deleted": prefix}]
    if op == "replace":
        say = progress or (lambda *a: None)
        say(0, 3, f"parsing {file}")
        rs = read_route_file(file, r._resolver())
        say(1, 3, f"building {len(rs.v4_addr) + len(rs.v6)} routes into the idle bank")
        check_v4(rs.v4_addr, rs.v4_len)
        r.publish(rs)                       # one flip; the saved state follows
        say(3, 3, "flipped")
        return [{"replaced": str(file), "ipv4": int(len(rs.v4_addr)), "ipv6": len(rs.v6),
                 "bank": r.bank}]
    return [{"prefix": p, "target": t} for p, t in r.route_list(limit)]


def _rt_neigh(r, op: str = "list", address: str | None = None, mac: str | None = None,
              dev: str | None = None) -> list[dict]:
    """list | add ADDRESS MAC [dev] (static) | del ADDRESS [dev]."""
    from nf.config.router import port_of_gateway
    from nf.nfs.router import NEIGH_STATIC
    if op == "add":
        name = dev or port_of_gateway(r.cfg, address)
        if name not in r.by_name:
            raise ValueError(f"neighbour {address}: on no connected subnet of a router port"
                             if dev is None else f"unknown interface {dev!r}")
        r.set_neighbour(r.by_name[name].idx, address, mac, static=True)
        return [{"added": address, "mac": mac.lower(), "port": name}]
    if op == "del":
        if not r.delete_neighbour(address, dev):
            raise KeyError(f"{r.name}: no neighbour {address}")
        return [{"deleted": address}]
    return [{"port": r.ports[p].name if p < len(r.ports) else f"#{p}", "address": a, "mac": m,
             "static": bool(f & NEIGH_STATIC)} for (p, a), (m, f) in sorted(r.neighbours().items())]


def _rt_reload(rec, cfg) -> dict:
    """icmp / learn_neighbours / ecmp_seed / use_module are rodata: the router's program again
    on its pinned maps (reused by fd, nf.chain.reuse_pinned: routes, neighbours, ports and
    counters carry on), swapped into each pinned link; the program pins follow."""
    from nf.bpf import BpfObject
    from nf.bpf.build import build
    from nf.bpf.pin import instance_dir
    from nf.chain import _repin, reuse_pinned, swap_links
    from nf.nfs.router import OBJECT, PROG_PINS, PROGRAM, Router
    d = instance_dir(rec.name, create=False)
    r = Router(cfg.model_copy(update={"route_file": None}))   # the pinned tables are kept
    obj = BpfObject.open(build(OBJECT))
    try:
        r.configure(obj)
        with contextlib.ExitStack() as es:
            reuse_pinned(obj, d, es)
            obj.load()
        n = swap_links(d, obj.program(PROGRAM), cfg.netns)
        for prog, pin in PROG_PINS.items():
            _repin(d / pin, obj.program(prog))
    finally:
        obj.close()
        r.close()
    return {"replaced": n, "object_sha": object_sha(OBJECT)}


def _rt_runtime(r, old, new) -> list[str]:
    """Routes, groups and neighbours of the config, changed in place (nf/chain.py router_runtime:
    new neighbours first, all routes in one bank flip, removed neighbours last)."""
    from nf.chain import router_runtime
    return router_runtime(r, old, new)


# ---- the kinds -------------------------------------------------
def _router_load(path: Path):
    from nf.config.router import load_router_config
    return load_router_config(path)



KINDS: dict[str, Kind] = {
    "l2_switch": Kind(
        "l2_switch", "L2 learning switch (VLANs, in-kernel flooding, FDB aging)",
        "nf.config.l2_switch:L2SwitchConfig", deployable=True, object="l2_switch/l2_switch",
        verbs={"fdb": _l2_fdb},
        _preflight=_l2_preflight, _up=_l2_up, _down=_l2_down, _open=_l2_open, _stats=_l2_stats,
        _reload=_l2_reload, _runtime=_l2_runtime),
    "filter": Kind(
        "filter", "packet filter: the base NF (parse, count, drop by protocol / port / fragment)",
        "nf.config.filter:FilterConfig", deployable=True, object="base/base",
        _preflight=_filter_preflight, _up=_filter_up, _down=_filter_down, _open=_filter_open,
        _stats=lambda f: f.stats(), _reload=_filter_reload),
    "chain": Kind(
        "chain", "several NFs on the same interfaces, run in order (tail-call dispatcher)",
        "nf.chain:ChainConfig", deployable=True,
        _preflight=_chain_preflight, _up=_chain_up, _down=_chain_down, _open=_ChainHandle,
        _stats=_chain_stats, _reload=_chain_apply),
    "router": Kind(
        "router", "LPM router (IPv4+IPv6, ECMP, ICMP errors in XDP)",
        "nf.config.router:RouterConfig", deployable=True, object="router/router",
        verbs={"routes": _rt_routes, "neigh": _rt_neigh},
        _load=_router_load, _preflight=_rt_preflight, _up=_rt_up, _down=_rt_down,
        _open=_rt_open, _stats=lambda r: r.counters(), _runtime=_rt_runtime, _reload=_rt_reload),
    "sketch": Kind(
        "sketch", "heavy-hitter count-min sketch (top-k, epochs, NitroSketch)",
        "nf.config.sketch:SketchConfig", deployable=True, object="sketch/sketch",
        verbs={"topk": _sk_topk},
        _preflight=_sk_preflight, _up=_sk_up, _down=_sk_down, _open=_sk_open,
        _stats=lambda sk: sk.counters(), _runtime=_sk_runtime, _reload=_sk_reload),
    "flow_table": Kind(
        "flow_table", "cuckoo flow table (5-tuple rules, per-flow counters)",
        "nf.config.flow_table:FlowTableConfig", deployable=True, object="flow_table/flow_table",
        verbs={"flows": _ft_flows},
        _preflight=_ft_preflight, _up=_ft_up, _down=_ft_down, _open=_ft_open,
        _stats=lambda ft: ft.counters(), _runtime=_ft_runtime, _reload=_ft_reload),
}


def get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown NF kind {name!r} (kinds: {', '.join(KINDS)})") from None


def detect(path: str | Path, kind: str | None = None) -> tuple[Kind, Model]:
    """The kind of a config file and its validated model. Explicit ``kind`` wins; else the
    file name (``l2_switch*.yaml``); else the one kind whose model accepts the file."""
    path = Path(path)
    if kind:
        k = get(kind)
        return k, k.load(path)
    for name, k in KINDS.items():
        if path.stem.startswith(name):
            return k, k.load(path)
    errors: list[tuple[str, str]] = []
    fits = []
    for name, k in KINDS.items():
        try:
            fits.append((k, k.load(path)))
        except ConfigError as e:
            if e.errors and e.errors[0][0].startswith("line") or "cannot read" in str(e):
                raise
            errors.append((f"as {name}", f"{len(e.errors)} error(s), first: "
                           f"{e.errors[0][0]}: {e.errors[0][1]}" if e.errors else "invalid"))
    if len(fits) == 1:
        return fits[0]
    if not fits:
        raise ConfigError(str(path), [("", "not a config of any NF kind (name the kind with --kind)")]
                          + errors)
    raise ConfigError(str(path), [("", "valid for several kinds ("
                                   + ", ".join(k.name for k, _ in fits) + "): name it with --kind")])
