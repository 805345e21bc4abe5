"""What an NF module tells the engine about itself: its ``KIND``, one instance of a ``Kind``.

    class SketchKind(Kind):
        name, summary, config = "sketch", "heavy-hitter count-min sketch", SketchConfig
        objects = {("pure", False): "sketch/sketch", ("pure", True): "sketch/sketch_chain", ...}
        def configure(self, obj, cfg): ...        # the only writer of rodata, map sizes, autoload
        def fill(self, ctl): ...                  # the maps' first contents, from the config
        def runtime(self, ctl, old, new): ...     # fields marked RUNTIME, changed in place
    KIND = SketchKind()

The engine (nf/engine.py) does the rest the same way for every NF: it opens the object of the
resolved variant (the chainable one in a chain), calls ``configure``, creates the maps pinned under
/sys/fs/bpf/xdp-nf/<name>/ or reuses the pinned ones, loads, calls ``started``, and for a fresh
deployment ``fill``; then it attaches links of its own or puts the program into a chain slot, or
swaps it into the existing links or slot. ``open`` gives the controller of a deployment from its
pins (verbs, stats, runtime changes); ``controller`` wraps a freshly loaded object for ``fill``.
Nothing here knows an NF by name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from nf import variants
from nf.config import ConfigError, NFConfig, Variant, load as _load, validate as _validate


VARIANTS = ("pure", "enetstl")


def one_object(obj: str, chained: str) -> dict[tuple[str, bool], str]:
    """``objects`` of an NF whose one object serves both variants (the variant is rodata or a
    program of its own), with its chainable build."""
    return {(v, c): chained if c else obj for v in VARIANTS for c in (False, True)}


def module_present() -> bool:
    """The enetstl module is loaded (its kfuncs resolve at load)."""
    from nf import kmod
    return kmod.is_loaded()


class Kind:
    name: str = ""
    noun: str = ""                      # in messages ("a switch in a chain ..."); default: name
    summary: str = ""
    config: type[NFConfig]
    # (variant, chained) -> built object; a missing pair is a combination the NF does not have
    objects: dict[tuple[str, bool], str] = {}
    # variant -> the XDP program attached (or put into a chain slot)
    programs: dict[str, str] = {}
    # variant -> {program: pin name} pinned besides the entry point's "prog" (controller queries)
    extra_pins: dict[str, dict[str, str]] = {}
    # the exit point's per-verdict counters (stats.h NF_STATS_MAP): `nf stats`, the metrics
    exit_stats: str = ""
    # stats() values that also go down: counter -> (Prometheus gauge name, help)
    gauges: dict[str, tuple[str, str]] = {}
    # verb -> fn(controller, **kw) -> rows, offered by `nf <verb>`
    verbs: dict[str, Callable[..., list[dict]]] = {}
    # "enetstl" without the module: a config error (True), or loaded anyway (the object falls back)
    enetstl_needs_module = True
    # in a chain: the config describes each interface (addresses, VLANs) and names exactly the
    # chain's (True), or leaves them out and runs on the chain's (False)
    interfaces_in_chain = False
    deployable, why_not = True, ""

    def __init__(self):
        self.noun = self.noun or self.name

    # ---- the config ---------------------------------------------------------------------------
    def load_config(self, path: str | Path) -> NFConfig:
        return _load(path, self.config)

    def validate(self, data: dict, source: str = "<config>") -> NFConfig:
        return _validate(data, self.config, source)

    def interface_fields(self, cfg) -> list[tuple[str, str]]:
        """(field path, interface name) of every interface the config names (for check())."""
        return [(f"interfaces[{i}]", n) for i, n in enumerate(cfg.interface_names())]

    def check(self, cfg) -> None:
        """Everything the system must agree with before anything loads: the netns exists and every
        interface resolves in it (ConfigError naming the field), the variant can run here."""
        check_system(cfg, self.interface_fields(cfg))
        self.resolve(cfg)

    def resolve(self, cfg) -> str:
        """The variant that runs: auto -> the one measured faster for this config when the module
        is loaded (nf/variants.py), else pure."""
        if cfg.variant == "auto":
            return variants.auto(self.name, cfg, ("enetstl", False) in self.objects and module_present())
        if cfg.variant == "enetstl" and self.enetstl_needs_module and not module_present():
            raise ConfigError(cfg.name, [("variant", "enetstl needs the enetstl module loaded (the "
                                                     "module is not loaded here); use pure or auto")])
        return getattr(cfg.variant, "value", cfg.variant)   # a model_copy(update=) keeps a str

    def resolved(self, cfg, variant: str | None = None):
        """``cfg`` with its variant resolved (or set to a deployment's ``variant``)."""
        return cfg.model_copy(update={"variant": Variant(variant or self.resolve(cfg))})

    def object(self, variant: str, chained: bool = False) -> str:
        try:
            return self.objects[(str(getattr(variant, "value", variant)), chained)]
        except KeyError:
            raise ConfigError(self.name, [("variant", f"{self.name} has no "
                                                      f"{'chainable ' if chained else ''}{variant} "
                                                      "program")]) from None

    def program(self, variant: str) -> str:
        return self.programs[str(getattr(variant, "value", variant))]

    def pins(self, variant: str) -> dict[str, str]:
        """Programs pinned in the deployment's directory: the entry point as "prog", and extras."""
        v = str(getattr(variant, "value", variant))
        return {self.program(v): "prog", **self.extra_pins.get(v, {})}

    # ---- what the engine calls ----------------------------------------------------------------
    def configure(self, obj, cfg) -> None:
        """Rodata, map sizes and autoload of ``cfg`` (variant resolved) on an opened object."""
        raise NotImplementedError

    def started(self, obj, cfg) -> None:
        """After every load, fresh or on pinned maps (per-program state such as a module pool)."""

    def controller(self, cfg, obj, pin_dir: Path | None):
        """The NF's controller around a freshly loaded object (``pin_dir``: where it is pinned)."""
        raise NotImplementedError

    def fill(self, ctl) -> dict:
        """Fill a fresh deployment's maps from its config; returns extras for its record."""
        return {}

    def open(self, cfg, pin_dir: Path):
        """The controller of a deployment from its pins (another process made it)."""
        raise NotImplementedError

    def release(self, ctl) -> None:
        """Close the controller's fds; the pins keep the deployment."""
        ctl.release()

    def runtime(self, ctl, old, new) -> list[str]:
        """Apply the changed RUNTIME fields in place (``ctl`` opened with ``new``); one line each."""
        return []

    def stats(self, ctl) -> dict[str, dict[str, int]]:
        """Counters per group (port, epoch, table) for `nf stats` and the metrics."""
        return {}

    # A table hashed on packet fields (its buckets, rows) is keyed by a secret, or an attacker
    # who knows the hash picks keys that collide. An NF with one defines ``keyed_table`` (what
    # `nf show` calls it) and ``keying(rec) -> {"keyed", "by": drawn | config | kernel,
    # "seed" (only when the config gave it)}``, read from the kernel's copy of the key.
    keyed_table: str = ""

    # ---- work after `nf up` (optional): a KIND with due(rec, cfg) -> unix time and
    # tick(controller) -> line ("" when nothing to say) is driven by `nf agent` (nf/agent.py);
    # tick_what, agent_does and without_agent name that work in its messages and `nf show`.


def keyed_by(by: str | None, seed: int | None = None) -> dict:
    """A hashed table's key as `nf show` tells it (Kind.keying): ``by`` drawn / config / kernel
    (None: not keyed yet); the seed only when the config gave it (a drawn one is a secret)."""
    return {"keyed": by is not None, "by": by or "not yet",
            **({"seed": seed} if by == "config" else {})}


def check_system(cfg, ifaces: list[tuple[str, str]]) -> dict[str, int]:
    """netns exists and every (field path, interface) resolves in it: ConfigError naming the
    fields. Returns name -> ifindex (one netlink dump of the netns)."""
    from nf.net.iface import InterfaceError, list_interfaces, resolve
    from nf.net.netns import exists
    if cfg.netns is not None and not exists(cfg.netns):
        raise ConfigError(cfg.name, [("netns", f"no network namespace {cfg.netns!r}")])
    have = {i.name: i.ifindex for i in list_interfaces(cfg.netns)} if ifaces else {}
    found, errors = {}, []
    for where, n in ifaces:
        if n in have:
            found[n] = have[n]
            continue
        try:
            found[n] = resolve(n, cfg.netns).ifindex      # its error names what is there
        except InterfaceError as e:
            errors.append((where, f"unknown interface: {e}"))
    if errors:
        raise ConfigError(cfg.name, errors)
    return found


def ifindex_or_0(name: str | None, netns: str | None) -> int:
    """An interface named in a config (redirect target, default port) as rodata: 0 when unset."""
    if not name:
        return 0
    from nf.net.iface import ifindex
    return ifindex(name, netns)

