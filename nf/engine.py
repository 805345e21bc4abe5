"""The one deployment engine: every way of deploying an NF runs this code with the NF's own
description (``nf.nfs.<nf>.KIND``, a nf.nfs.kind.Kind).

    kind, cfg = engine.detect("configs/sketch.yaml")     # NF kinds and chains
    engine.up(path, kind, cfg, name)                      # record, load, fill, attach (pinned)
    plan = engine.plan(rec, kind, cfg, reload=False)      # per-field lines, channel of each
    engine.apply(rec, kind, cfg, plan)                    # program swap and/or runtime changes
    engine.teardown(rec)

Building blocks, the same for a standalone NF and a chain member, fresh or on pinned maps:
``load`` (object of the resolved variant, chainable in a chain; the NF's configure(); maps created
and pinned, or reused from the pins by fd; load; the NF's started()), ``fill`` through the NF's
controller on a fresh deployment, ``pin_programs``, then ``attach`` (links of its own, pinned) or
a chain slot, or ``swap_links`` / a slot replacement for a new program on the same maps. A chain
(nf/chain.py: dispatcher, PROG_ARRAY, ChainConfig) is built from the same blocks.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from nf import deploy, variants
from nf.deploy import CRASH_STEPS, crash_point  # noqa: F401 (tests name the steps here)
from nf.bpf import BpfObject, Link, Map, Program, XdpMode
from nf.bpf import pin as _pin
from nf.chain import CHAIN_MAP, Chain, ChainConfig, PinnedChain, chain_stats
from nf.config import Channel, ConfigError, channel_of, diff, load as _load, validate as _validate
from nf.config.base import parse_once
from nf.net import netns as _netns
from nf.nfs import names as _nf_names
from nf.nfs.kind import Kind, check_system


class Conflict(RuntimeError):
    """The change conflicts with what is deployed (another config, busy, needs down + up);
    ``lines``: the plan of an apply that was refused."""

    def __init__(self, msg: str, lines: list[str] | None = None):
        super().__init__(msg)
        self.lines = lines or []


class Undeployable(RuntimeError):
    def __init__(self, kind: str, why: str):
        self.kind = kind
        super().__init__(f"{kind} cannot be deployed by nf yet: {why}")


# ---- kinds -----------------------------------------------------------------------------------
class ChainKind:
    """The chain as a kind of config file (nf/chain.py): its members are NF kinds."""
    name = "chain"
    summary = "several NFs on the same interfaces, run in order (tail-call dispatcher)"
    config = ChainConfig
    deployable, why_not, verbs = True, "", {}

    def load_config(self, path):
        return _load(path, ChainConfig)

    def validate(self, data, source="<config>"):
        return _validate(data, ChainConfig, source)

    def check(self, cfg) -> None:
        check_system(cfg, [(f"interfaces[{i}]", n) for i, n in enumerate(cfg.interfaces)])

    def stats(self, rec) -> dict:
        return {"dispatcher": chain_stats(rec.pin_dir)}


CHAIN = ChainKind()


def kinds() -> dict:
    """Every kind a config file can be: the NF modules of nf/nfs/ and the chain."""
    return {**{n: get(n) for n in _nf_names()}, "chain": CHAIN}


def get(name: str):
    if name == "chain":
        return CHAIN
    from nf.nfs import get as _get
    return _get(name)


def detect(path: str | Path, kind: str | None = None):
    """(kind, validated config) of a file. Explicit ``kind`` wins; else the file name
    (``l2_switch*.yaml``); else the one kind whose model accepts the file."""
    path = Path(path)
    if kind:
        k = get(kind)
        return k, k.load_config(path)
    names = [*_nf_names(), "chain"]
    for n in names:
        if path.stem.startswith(n):
            k = get(n)
            return k, k.load_config(path)
    errors: list[tuple[str, str]] = []
    fits = []
    with parse_once():
        for n in names:
            k = get(n)
            try:
                fits.append((k, k.load_config(path)))
            except ConfigError as e:
                if e.errors and e.errors[0][0].startswith("line") or "cannot read" in str(e):
                    raise
                errors.append((f"as {n}", f"{len(e.errors)} error(s), first: "
                               f"{e.errors[0][0]}: {e.errors[0][1]}" if e.errors else "invalid"))
    if len(fits) == 1:
        return fits[0]
    if not fits:
        raise ConfigError(str(path), [("", "not a config of any NF kind (name the kind with --kind)")]
                          + errors)
    raise ConfigError(str(path), [("", "valid for several kinds ("
                                   + ", ".join(k.name for k, _ in fits) + "): name it with --kind")])


def object_sha(name: str) -> str:
    """Digest of a built BPF object (rebuilding it if stale): apply reloads when it changed."""
    from nf.bpf.build import build
    return hashlib.sha256(Path(build(name)).read_bytes()).hexdigest()[:16]


# ---- building blocks -------------------------------------------------------------------------
def pinnable(obj) -> list[str]:
    """Maps of an object pinned in its deployment's directory: all but the chain's PROG_ARRAY
    (the chain's pin alone decides its lifetime) and internal ones (.rodata & co.: bpffs refuses
    dots, and their content is per load)."""
    return [n for n in obj.maps if n != CHAIN_MAP and "." not in n]


def reuse_pinned(obj, d: Path, es: contextlib.ExitStack) -> None:
    """Before load: every map of ``obj`` with a pin in ``d`` becomes that pinned map, reused by
    fd (bpf_map__reuse_fd), not through libbpf's pin_maps: the kernel adds BPF_F_RDONLY_PROG to
    every DEVMAP it creates, so libbpf 1.4's compatibility check of a pinned DEVMAP against the
    object fails ("parameter mismatch"). ``es`` keeps the pinned fds open until the load."""
    for n in pinnable(obj):
        if (d / n).exists():
            obj.map(n).reuse(es.enter_context(contextlib.closing(Map.from_pin(d / n))))


def load(kind: Kind, cfg, *, pin_dir: Path | None = None, reuse: bool = False,
         chain: Chain | None = None, position: int = 0, obj: BpfObject | None = None) -> BpfObject:
    """The NF's object for ``cfg`` (variant resolved), loaded: configured by the NF, its maps
    created (and pinned in ``pin_dir`` at load) or, with ``reuse``, the pinned ones; as member
    ``position`` of ``chain`` when given (its chainable object, sharing the chain's PROG_ARRAY).
    ``obj``: an object opened by the caller instead (a benchmark's build variant)."""
    if obj is None:
        obj = BpfObject.open_built(kind.object(cfg.variant, chained=chain is not None))
    try:
        if chain is not None:
            chain.join(obj, position)
        kind.configure(obj, cfg)
        if pin_dir is not None and not reuse:
            pin_dir.mkdir(parents=True, exist_ok=True)
            obj.pin_maps(pin_dir, pinnable(obj))
        with contextlib.ExitStack() as es:
            if reuse:
                reuse_pinned(obj, pin_dir, es)
            obj.load()
        if pin_dir is not None and not reuse:
            crash_point("up-loaded")
        kind.started(obj, cfg)
    except BaseException:
        obj.close()
        raise
    return obj


def repin(path: Path, prog) -> None:
    """Point a program pin at ``prog`` (pin a temporary, rename over: readers never miss it)."""
    tmp = path.parent / f"_tmp{os.getpid()}_{path.name}"
    if tmp.exists():
        tmp.unlink()
    prog.pin(tmp)
    os.rename(tmp, path)


def pin_programs(kind: Kind, obj, cfg, pin_dir: Path) -> None:
    """The NF's program pins (its controller's queries and writes run them) at this object's."""
    for prog, pin in kind.pins(cfg.variant).items():
        repin(pin_dir / pin, obj.program(prog))


def xdp_mode(cfg) -> XdpMode:
    return XdpMode[str(getattr(cfg.attach, "value", cfg.attach)).upper()]


def attach(prog, cfg, links_dir: Path | None = None) -> list:
    """Attach ``prog`` to every interface of ``cfg`` in its netns (links pinned in
    ``links_dir``/<interface> when given). Returns the links (the caller closes them)."""
    names = cfg.interface_names()
    ifx = check_system(cfg, [(f"interfaces[{i}]", n) for i, n in enumerate(names)])
    links = []
    if links_dir is not None:
        links_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _netns.enter(cfg.netns):
            for n in names:
                links.append(prog.attach_xdp(ifx[n], xdp_mode(cfg),
                                             pin=links_dir / n if links_dir else None))
                if links_dir is not None and len(links) == 1:
                    crash_point("up-attached")
    except BaseException:
        for link in links:
            link.close()
        raise
    return links


def swap_links(d: Path, prog, netns: str | None) -> int:
    """bpf_link_update of every link pinned under ``d``/links to ``prog`` (in the deployment's
    netns): no instant without a program. Returns how many links were swapped."""
    links = sorted((d / "links").iterdir()) if (d / "links").is_dir() else []
    with _netns.enter(netns):
        for p in links:
            with contextlib.closing(Link.from_pin(p)) as link:
                link.update_program(prog)
    return len(links)


@contextlib.contextmanager
def opened(kind, rec):
    """The controller of a deployment from its pins, with its recorded config."""
    h = kind.open(kind.validate(rec.config, rec.name), rec.pin_dir)
    try:
        yield h
    finally:
        kind.release(h)


# ---- one NF: fresh, on its own links or in a chain slot ---------------------------------------
def start(kind: Kind, cfg, pin_dir: Path, *, chain: Chain | None = None,
          position: int = 0) -> tuple[Program, dict]:
    """A fresh deployment of ``cfg`` (variant resolved) pinned in ``pin_dir``: loaded, filled
    through the NF's controller, its programs pinned, then attached through pinned links - or,
    as member ``position`` of ``chain``, left for the chain to install. Returns its entry
    program (from the pin; the caller closes it) and the fill's record extras."""
    obj = load(kind, cfg, pin_dir=pin_dir, chain=chain, position=position)
    ctl = None
    try:
        ctl = kind.controller(cfg, obj, pin_dir)
        info = kind.fill(ctl) or {}
        crash_point("up-filled")
        pin_programs(kind, obj, cfg, pin_dir)
        if chain is None:
            for link in attach(obj.program(kind.program(cfg.variant)), cfg, pin_dir / "links"):
                link.close()
        prog = Program.from_pin(pin_dir / "prog")
    finally:
        if ctl is not None:
            kind.release(ctl)
        obj.close()                 # the pins and links hold the deployment
    return prog, info


def swap_program(kind: Kind, cfg, pin_dir: Path, on_swap=lambda: None) -> int:
    """A new program for a deployment on its own links: loaded on its pinned maps (state and
    counters carry on), swapped into every pinned link, its program pins follow. Returns the
    links replaced. ``on_swap()`` runs once the load succeeded, before anything changes."""
    obj = load(kind, cfg, pin_dir=pin_dir, reuse=True)
    try:
        on_swap()
        n = swap_links(pin_dir, obj.program(kind.program(cfg.variant)), cfg.netns)
        pin_programs(kind, obj, cfg, pin_dir)
    finally:
        obj.close()                 # the links hold the new program, the pins the maps
    return n


# ---- records: nf up / down ---------------------------------------------------------------------
def record(f: Path | None, kind, cfg, name: str) -> deploy.Record:
    return deploy.Record(name=name, kind=kind.name, source=str(Path(f).resolve()) if f else "",
                         config=cfg.model_dump(mode="json"), netns=cfg.netns,
                         interfaces=cfg.interface_names(),
                         mode=str(getattr(cfg.attach, "value", cfg.attach)))


def _iface_users(exclude: str) -> dict[tuple, str]:
    used = {}
    for r in deploy.records():
        if r.name != exclude and not r.chain:
            for i in r.interfaces:
                used[(r.netns, i)] = r.name
    return used


def up(f: Path | None, kind, cfg, name: str, say=print) -> str:
    """Bring one instance (an NF or a chain) up, recording it first. Returns "unchanged" / "up".
    Caller holds deploy.locked()."""
    if not kind.deployable:
        raise Undeployable(kind.name, kind.why_not)
    rec = deploy.read(name)
    new = record(f, kind, cfg, name)
    if rec is not None:
        bad = deploy.problems(rec) if rec.status == "up" else []
        if rec.stale or bad:       # the kernel does not run what the record says: start over
            say(f"{name}: repairing " + (unfinished(rec) if rec.stale else "a deployment the kernel no longer runs "
                                         f"as recorded ({'; '.join(bad)})") + ": redeploying")
            teardown(rec)
            rec = None
        elif rec.digest == new.digest and rec.kind == kind.name and rec.status == "up":
            for r in edited(rec):
                raise Conflict(f"{name} runs {rec.source or 'this config'} but {r.name}'s tables "
                               f"were changed since by {edits_text(r)}; `nf apply {f or 'FILE'}` "
                               f"puts the file's tables back; nothing changed")
            return "unchanged"
        elif rec.status != "up":
            raise Conflict(f"{name} is being changed by pid {rec.pid}")
        else:
            raise Conflict(f"{name} is deployed from {rec.source or '<code>'} with a different "
                           f"config; use `nf apply` to change it or `nf down {name}` first")
    elif (_pin.ROOT / name).exists():
        raise Conflict(f"{name}: pins exist in {new.pin_dir} without a deployment record "
                       f"(made by a controller directly?); `nf down {name}` removes them")
    used = _iface_users(name)
    for i in new.interfaces:
        if (new.netns, i) in used:
            raise Conflict(f"{name}: interface {i} is already used by {used[(new.netns, i)]}")
    if kind is CHAIN:                      # named before anything loads: teardown finds them
        new.extra["members"] = [{"name": m.name, "kind": k.name, "position": i}
                                for i, (k, m) in enumerate(cfg.members(), 1)]
    deploy.write(new)                      # status "deploying": a crash from here is recoverable
    crash_point("before-up")
    try:
        if kind is CHAIN:
            info = start_chain(cfg, f)
        else:
            cfg_r = kind.resolved(cfg)
            prog, info = start(kind, cfg_r, _pin.instance_dir(name))
            prog.close()
            info = {"variant": cfg_r.variant.value,
                    "variant_why": variants.why(kind.name, cfg, cfg_r.variant.value),   # nf show
                    "object_sha": object_sha(kind.object(cfg_r.variant)), **info}
    except BaseException:
        teardown(new)
        raise
    crash_point("after-up")
    new.variant = info.pop("variant", new.variant)
    new.extra.update(info)
    new.status = "up"
    deploy.write(new)
    return "up"


def unfinished(rec) -> str:
    """What a stale record is, in words."""
    if rec.status == "failed":
        return f"a deployment a failed `nf apply` left half changed ({rec.extra.get('failure', '?')})"
    doing = {"deploying": "`nf up`", "applying": "`nf apply`"}.get(rec.status, rec.status)
    return f"an unfinished {doing} (pid {rec.pid} is gone)"


def edited(rec) -> list:
    """The records (the deployment's, or a chain's members') with live edits."""
    recs = [rec] + [deploy.read(m["name"]) for m in rec.extra.get("members", [])
                    if rec.kind == "chain"]
    return [r for r in recs if r is not None and r.extra.get("edits")]


def edits_text(rec) -> str:
    """The live edits of a record (`nf routes add ...`), the last few named."""
    e = rec.extra.get("edits") or []
    n = rec.extra.get("edit_count", len(e))
    return (f"{n} command(s)" + (", the last: " if n > 3 else ": ")
            + "; ".join(f"`nf {x}`" for x in e[-3:]))


def teardown(rec) -> None:
    """Any deployment from its pins alone (any process, partial pins after a crash): a chain's
    dispatcher links first (its interfaces are free at once), then every member; links detached,
    everything unpinned, records removed."""
    deploy.cleanup_pins(rec.name)
    for m in rec.extra.get("members", []) if rec.kind == "chain" else []:
        deploy.cleanup_pins(m["name"])
        deploy.remove(m["name"])
    crash_point("down-unpinned")
    deploy.remove(rec.name)


# ---- nf apply --------------------------------------------------------------------------------
@dataclass
class Change:
    path: str
    old: object
    new: object
    channel: Channel
    member: str = ""            # a chain member's name

    def line(self) -> str:
        who = f"{self.member}." if self.member else ""
        js = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731  (records keep keys sorted)
        what = (f"removed {js(self.old)}" if self.path.endswith("[-]") else
                f"added {js(self.new)}" if self.path.endswith("[+]") else
                f"{js(self.old)} -> {js(self.new)}")
        return f"{who}{self.path}: {what}  [{self.channel.value}]"


def changes(kind, old, new, member: str = "") -> list[Change]:
    """Every changed field of ``old`` -> ``new`` with the channel its config model declares."""
    return [Change(p, a, b, channel_of(kind.config, p), member)
            for p, a, b in diff(old.model_dump(mode="json"), new.model_dump(mode="json"))]


def refuse(name: str, fields: list[str], lines: list[str]) -> None:
    if fields:
        raise Conflict(f"{name}: changing {', '.join(sorted(set(fields)))} needs `nf down {name}` + "
                       f"`nf up` (state would be lost); nothing changed", lines)


@dataclass
class MemberPlan:
    name: str
    kind: object
    position: int
    cfg: object                   # the new config
    old: object | None = None     # the deployed config (None: a new member)
    old_position: int = 0
    variant: str = "pure"         # what runs (kept members: the deployed variant)
    runtime: bool = False
    program: bool = False
    refill: bool = False          # live edits (`nf routes add`): its tables back to the config's


@dataclass
class Plan:
    lines: list[str]
    changed: bool                  # the config differs
    program: bool = False          # a new program (standalone) / some member's
    runtime: bool = False
    members: list[MemberPlan] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reorder: bool = False          # a chain's member list changes: new dispatcher
    refill: bool = False           # live edits since: the runtime tables back to the config's
    touched: bool = False          # set by apply once the kernel started to change


def plan(rec, kind, cfg, reload: bool = False) -> Plan:
    """What moving deployment ``rec`` to ``cfg`` changes, touching nothing. Raises Conflict for
    any field only down + up can change (naming every one)."""
    if kind is CHAIN:
        return _plan_chain(rec, cfg, reload)
    old = kind.validate(rec.config, rec.name)
    ch = changes(kind, old, cfg)
    p = Plan([c.line() for c in ch], bool(ch))
    bad = [c.path.split(".")[0].split("[")[0] for c in ch if c.channel == Channel.redeploy]
    p.refill = _refill_line(rec, kind, p.lines, bad)
    refuse(rec.name, bad, p.lines)
    p.changed = p.changed or p.refill
    p.runtime = p.refill or any(c.channel == Channel.runtime for c in ch)
    sha = object_sha(kind.object(rec.variant))
    p.program = (reload or any(c.channel == Channel.program for c in ch)
                 or sha != rec.extra.get("object_sha"))
    return p


def _refill_line(rec, kind, lines: list[str], bad: list[str], who: str = "") -> bool:
    """A deployment whose tables were changed by commands since (`nf routes add`): its runtime
    tables go back to exactly the config's. True when there were such edits."""
    if not rec.extra.get("edits"):
        return False
    lines.append(f"{who}live tables changed since by {edits_text(rec)}: back to the file's  [runtime]")
    if not hasattr(kind, "refill"):
        bad.append(f"{who}live tables")
    return True


def _variant(kind, rec_variant: str, old, new) -> str:
    """The deployed variant, unless the config's variant changed (a program field for the NFs
    whose variant is a rodata flag): the maps were made for the deployed one."""
    return kind.resolve(new) if old is not None and old.variant != new.variant else rec_variant


def apply(rec, kind, cfg, p: Plan, progress=None) -> list[str]:
    """Carry out a plan: new program(s) first (a verifier error changes nothing), then runtime
    fields through the NF's controller on its pins. The record takes the new config."""
    if kind is CHAIN:
        return _apply_chain(rec, cfg, p, progress)
    log = []
    old = kind.validate(rec.config, rec.name)
    if p.program:
        variant = _variant(kind, rec.variant, old, cfg)
        n = swap_program(kind, kind.resolved(cfg, variant), rec.pin_dir,
                         on_swap=lambda: setattr(p, "touched", True))
        rec.variant = variant
        rec.extra.update(replaced=n, object_sha=object_sha(kind.object(variant)))
        log.append(f"program replaced on {n} link(s), maps kept")
        crash_point("apply-swapped")
    if p.runtime:
        with contextlib.ExitStack() as es:
            h = es.enter_context(_open_as(kind, cfg, rec.pin_dir))
            p.touched = True
            log += kind.refill(h, cfg) if p.refill else kind.runtime(h, old, cfg)
    clear_edits(rec)
    return log


def clear_edits(rec) -> None:
    rec.extra.pop("edits", None)
    rec.extra.pop("edit_count", None)


@contextlib.contextmanager
def _open_as(kind, cfg, pin_dir: Path):
    h = kind.open(cfg, pin_dir)
    try:
        yield h
    finally:
        kind.release(h)


# ---- chains ----------------------------------------------------------------------------------
def _member_record(chain_rec_name: str, source: str, cfg: ChainConfig, kind, mcfg, position: int,
                   variant: str) -> deploy.Record:
    r = deploy.read(mcfg.name) or record(None, kind, mcfg, mcfg.name)
    r.source, r.kind, r.config = source, kind.name, mcfg.model_dump(mode="json")
    r.netns, r.interfaces = cfg.netns, list(cfg.interfaces)
    r.chain = {"name": chain_rec_name, "position": position}
    r.variant, r.status = variant, "up"
    clear_edits(r)                  # a chain's apply put every member's tables back
    return r


def start_chain(cfg: ChainConfig, f: Path | None = None) -> dict:
    """Every member fresh in a new chain, the chain's maps pinned, the dispatcher attached on each
    interface through pinned links. On any error everything made so far is torn down."""
    ms = cfg.members()
    d = _pin.instance_dir(cfg.chain)
    if any(d.iterdir()):
        raise ConfigError(cfg.chain, [("chain", f"pins already exist in {d}; "
                                                f"`nf down {cfg.chain}` first")])
    for pos, (k, m) in enumerate(ms, 1):     # another deployment's pins are never touched
        if any(_pin.instance_dir(m.name).iterdir()):
            raise ConfigError(cfg.chain, [(f"nfs[{pos - 1}].config.name", f"pins of {m.name} "
                                           "already exist; `nf down` it first")])
    chain = Chain()
    made, progs = [], []
    try:
        chain.slots.pin(d / CHAIN_MAP)
        chain.obj.map("chain_stats").pin(d / "chain_stats")
        for pos, (k, m) in enumerate(ms, 1):
            mr = k.resolved(m)
            made.append((k, m, mr.variant.value, pos))
            progs.append(start(k, mr, _pin.ROOT / m.name, chain=chain, position=pos)[0])
        chain.install(progs)
        for link in attach(chain.prog, cfg, d / "links"):
            link.close()
        for k, m, variant, pos in made:
            deploy.write(_member_record(cfg.chain, str(Path(f).resolve()) if f else "", cfg, k, m,
                                        pos, variant))
    except BaseException:
        deploy.cleanup_pins(cfg.chain)
        for _, m, _, _ in made:
            deploy.cleanup_pins(m.name)
            deploy.remove(m.name)
        raise
    finally:
        for prog in progs:
            prog.close()
        chain.close()
    return {"variant": "chain", "members": [{"name": m.name, "kind": k.name, "position": pos}
                                            for k, m, _, pos in made]}


def _plan_chain(rec, new: ChainConfig, reload: bool) -> Plan:
    old_members = {m["name"]: m for m in rec.extra.get("members", [])}
    old_kind = {m["config"]["name"]: m["kind"] for m in rec.config["nfs"]}
    ms = new.members()
    old_order = [m["name"] for m in sorted(old_members.values(), key=lambda m: m["position"])]
    p = Plan([], rec.digest != deploy.digest(new.model_dump(mode="json")))
    top = [c for c in changes(CHAIN, _validate(rec.config, ChainConfig, rec.name), new)
           if not c.path.startswith("nfs")]
    p.lines += [c.line() for c in top]
    bad = [c.path.split(".")[0] for c in top if c.channel == Channel.redeploy]
    for pos, (k, m) in enumerate(ms, 1):
        mp = MemberPlan(m.name, k, pos, m)
        p.members.append(mp)
        if m.name not in old_members:
            mp.variant = k.resolve(m)
            p.lines.append(f"{m.name}: new {k.name} at position {pos}")
            continue
        mp.old_position = old_members[m.name]["position"]
        if mp.old_position != pos:
            p.lines.append(f"{m.name}: position {mp.old_position} -> {pos}")
        if old_kind.get(m.name, k.name) != k.name:
            bad.append(f"{m.name} (kind {old_kind[m.name]} -> {k.name})")
            continue
        mrec = deploy.read(m.name)
        if mrec is None:
            raise Conflict(f"member {m.name} has no deployment record; `nf down {rec.name}` + `nf up`")
        mp.old = k.validate(mrec.config, m.name)
        mp.variant = _variant(k, mrec.variant, mp.old, m)
        ch = changes(k, mp.old, m, member=m.name)
        p.lines += [c.line() for c in ch]
        bad += [f"{m.name}.{c.path.split('.')[0].split('[')[0]}" for c in ch
                if c.channel == Channel.redeploy]
        mp.refill = _refill_line(mrec, k, p.lines, bad, f"{m.name}.")
        p.changed = p.changed or mp.refill
        mp.runtime = mp.refill or any(c.channel == Channel.runtime for c in ch)
        mp.program = any(c.channel == Channel.program for c in ch)
    kept = {m.name for _, m in ms}
    p.removed = [n for n in old_order if n not in kept]
    p.lines += [f"{n}: removed" for n in p.removed]
    refuse(rec.name, bad, p.lines)
    p.reorder = [m.name for _, m in ms] != old_order or reload
    p.program = any(mp.program for mp in p.members) or p.reorder
    p.runtime = any(mp.runtime for mp in p.members)
    return p


def _apply_chain(rec, new: ChainConfig, p: Plan, progress=None) -> list[str]:
    """Move a deployed chain to ``new``.

    Same members in the same order: only what changed changes - every new program loaded first
    (a verifier error changes nothing), then runtime fields through the members' controllers,
    then each new program into its own slot of the chain's PROG_ARRAY (one map update; the
    dispatcher, its links and the other members are not touched). Otherwise (reorder, insert,
    remove, --reload): kept members are loaded again for their positions on their own pinned
    maps, new members come up fresh, runtime changes go through the kept members' controllers,
    then one new dispatcher is swapped into every interface's link (frames see the old chain or
    the new one); removed members go down after the swap."""
    say = progress or (lambda *a: None)
    d = rec.pin_dir
    mdir = lambda mp: _pin.ROOT / mp.name  # noqa: E731
    log, held, fresh = [], [], []
    if p.reorder:
        with contextlib.closing(Map.from_pin(d / "chain_stats")) as st:
            chain = Chain(reuse={"chain_stats": st})
        todo = p.members
    else:
        chain = PinnedChain(d)
        todo = [mp for mp in p.members if mp.program]
    total = len(todo) + sum(mp.runtime for mp in p.members) + 1
    step = 0
    try:
        for mp in todo:
            cfg = mp.kind.resolved(mp.cfg, mp.variant)
            obj = None
            if mp.old is None:
                say(step, total, f"{mp.name}: loading for position {mp.position}")
                fresh.append(mp)
                prog = start(mp.kind, cfg, mdir(mp), chain=chain, position=mp.position)[0]
                log.append(f"{mp.name}: new {mp.kind.name} at position {mp.position}")
            else:
                say(step, total, f"{mp.name}: loading its new program")
                obj = load(mp.kind, cfg, pin_dir=mdir(mp), reuse=True, chain=chain,
                           position=mp.position)
                prog = obj.program(mp.kind.program(cfg.variant))
                if p.reorder:
                    log.append(f"{mp.name}: position {mp.old_position} -> {mp.position}"
                               if mp.old_position != mp.position
                               else f"{mp.name}: stays at {mp.position}")
            held.append((mp, prog, obj, cfg))
            step += 1
        for mp in p.members:               # kept members' maps: seen by the old and new programs
            if mp.runtime:
                say(step, total, f"{mp.name}: changing it in place")
                with _open_as(mp.kind, mp.cfg, mdir(mp)) as h:
                    p.touched = True
                    done = (mp.kind.refill(h, mp.cfg) if mp.refill
                            else mp.kind.runtime(h, mp.old, mp.cfg))
                    log += [f"{mp.name}: {line}" for line in done]
                step += 1
        say(step, total, "swapping the dispatcher" if p.reorder else "replacing slots")
        p.touched = True
        if p.reorder:
            chain.install([prog for _, prog, _, _ in held])
            swap_links(d, chain.prog, new.netns)     # the swap: old chain or new, never mixed
            repin(d / CHAIN_MAP, chain.slots)        # the old PROG_ARRAY's last pin goes
        for mp, prog, obj, cfg in held:
            if not p.reorder:
                chain.replace(mp.position, prog)
                log.append(f"{mp.name}: program replaced in slot {mp.position}, maps kept")
            elif obj is not None and mp.program:
                log.append(f"{mp.name}: new program, maps kept")
            if obj is not None:
                pin_programs(mp.kind, obj, cfg, mdir(mp))
        say(total, total, "done")
    except BaseException:
        for mp in fresh:
            deploy.cleanup_pins(mp.name)
        raise
    finally:
        for _, prog, obj, _ in held:
            (obj or prog).close()
        chain.close()
    for n in p.removed:
        deploy.cleanup_pins(n)
        deploy.remove(n)
        log.append(f"{n}: removed")
    rec.extra["members"] = [{"name": mp.name, "kind": mp.kind.name, "position": mp.position}
                            for mp in p.members]
    for mp in p.members:                   # member records follow
        deploy.write(_member_record(new.chain, rec.source, new, mp.kind, mp.cfg, mp.position,
                                    mp.variant))
    return log or ["nothing changed"]


def stats(kind, rec) -> dict:
    """Counters per group of a deployment (the NF's own; a chain's dispatcher)."""
    if kind is CHAIN:
        return CHAIN.stats(rec)
    with opened(kind, rec) as h:
        return kind.stats(h)


def verb(kind, rec, name: str, **kw) -> list[dict]:
    """A verb of the deployment's NF. One that changes a table (an ``op`` other than list:
    `nf routes add`) marks the record first: from then on it says its tables differ from its
    config (`nf up` of the file is no longer "unchanged"; `nf apply` puts them back). The caller
    holds deploy.locked() for those."""
    op = kw.get("op", "list")
    if op != "list":
        before = (list(rec.extra.get("edits", [])), rec.extra.get("edit_count", 0))
        what = " ".join(str(v.text() if hasattr(v, "text") else v) for k, v in kw.items()
                        if k not in ("op", "progress") and v is not None)
        rec.extra["edits"] = (before[0] + [f"{name} {rec.name} {op} {what}".rstrip()])[-5:]
        rec.extra["edit_count"] = before[1] + 1
        deploy.write(rec)
        crash_point("verb-marked")
    try:
        with opened(kind, rec) as h:
            rows = kind.verbs[name](h, **kw)
    except BaseException:
        if op != "list":          # a refused edit changed nothing (tables flip whole or not)
            rec.extra["edits"], rec.extra["edit_count"] = before
            if not before[0]:
                clear_edits(rec)
            deploy.write(rec)
        raise
    if op != "list":
        crash_point("verb-done")
    return rows


__all__ = ["CHAIN", "Change", "Conflict", "Plan", "Undeployable", "apply", "attach", "detect",
           "get", "kinds", "load", "opened", "pin_programs", "plan", "record", "start",
           "start_chain", "stats", "swap_links", "swap_program", "teardown", "up", "verb"]
