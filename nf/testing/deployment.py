"""The one place nf.testing deploys a user's config: the same path as `nf up` (validate, system
check, record, load, attach, pins), into a throwaway lab's dut namespace under a unique name.

    kind, cfg = deployment.load("router.yaml")            # ConfigError names the field
    dep = deployment.up(kind, cfg, "router.yaml", netns=lab.dut, tag=lab.name)
    deployment.counters(dep)      # {"rt0.rx_packets": 3, "verdict.redirect": 2, ...}
    deployment.down(dep)

Everything that touches the deployment machinery (nf.engine, the deploy records) is in this
module, so moving to another deployment API changes this file only.

The deployed copy differs from the user's file in two fields only: ``netns`` (the lab's dut) and
the instance name (``<name>-<lab suffix>``, chain members too), so a test never touches, nor
collides with, a real deployment of the same file or a parallel test run. A test deployment is
recognisable by its netns alone (a lab netns, nf.net.lab's naming: ``nfl<pid>x...``):
``cleanup_stale()`` tears down those whose lab process is dead (killed with SIGKILL).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from nf.config import ConfigError

# fields that name an interface besides the ones a kind attaches to (a redirect target, ...)
_IFACE_FIELDS = ("redirect_to", "default_port", "port")


@dataclass
class Deployment:
    kind: str                   # nf.engine kind: l2_switch, router, sketch, flow_table, chain, ...
    name: str                   # instance name of the test copy (pins, record)
    netns: str
    config: object              # the deployed (retargeted) config model
    members: dict[str, str]     # chain: deployed member name -> the name in the user's file


def load(path: str | os.PathLike, kind: str | None = None):
    """(kind object, validated config) of a config file: what `nf up FILE` reads."""
    from nf import engine
    return engine.detect(Path(path), kind)


def instance_name(kind, cfg, path) -> str:
    return cfg.name


def interfaces(kind, cfg) -> list[str]:
    """Every interface the config names, in order: the ones it attaches to (a switch's ports, a
    router's interfaces, a chain's), then any other it sends to (redirect_to, default_port, a
    rule's port), chain members' included."""
    names = list(cfg.interface_names())
    for _, m in members(kind, cfg):
        for v in _named(m):
            if v not in names:
                names.append(v)
    return names


def members(kind, cfg) -> list[tuple]:
    """[(kind, config)] of the NFs a config deploys: itself, or a chain's members."""
    return list(cfg.members()) if kind.name == "chain" else [(kind, cfg)]


def _named(model) -> list[str]:
    """Values of fields listed in _IFACE_FIELDS anywhere in a config model."""
    from pydantic import BaseModel
    out = []
    for f in type(model).model_fields:
        v = getattr(model, f)
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, BaseModel):
                out += _named(x)
            elif f in _IFACE_FIELDS and isinstance(x, str):
                out.append(x)
    return out


def _tagged(name: str, tag: str) -> str:
    return f"{name[:31 - len(tag)]}-{tag}"


def retarget(kind, cfg, path, netns: str, tag: str):
    """The config with ``netns`` and unique instance names; returns (config, name, members)."""
    data = cfg.model_dump(mode="json")
    renamed = {}
    if kind.name == "chain":
        data["chain"] = _tagged(cfg.chain, tag)
        for spec, (_, mcfg) in zip(data["nfs"], cfg.members()):
            new = _tagged(mcfg.name, tag)
            spec["config"]["name"] = new
            renamed[new] = mcfg.name
    else:
        data["name"] = _tagged(instance_name(kind, cfg, path), tag)
    data["netns"] = netns
    new = kind.validate(data, str(path))
    return new, instance_name(kind, new, path), renamed


def up(kind, cfg, path, netns: str, tag: str) -> Deployment:
    """Deploy the retargeted config exactly as `nf up` would (record first, all or nothing)."""
    from nf import deploy, engine
    cfg, name, members = retarget(kind, cfg, path, netns, tag)
    kind.check(cfg)
    with deploy.locked():
        engine.up(Path(path), kind, cfg, name, say=lambda s: None)
    return Deployment(kind.name, name, netns, cfg, members)


def down(dep: Deployment) -> None:
    """Tear the test copy down (also when half made); a missing record is fine."""
    from nf import deploy, engine
    with deploy.locked(timeout=60):
        rec = deploy.read(dep.name)
        if rec is not None:
            engine.teardown(rec)
        else:
            deploy.cleanup_pins(dep.name)


def cleanup_stale() -> list[str]:
    """Tear down deployments into lab namespaces whose process died (SIGKILL); returns names."""
    from nf import deploy, engine
    from nf.net.lab import _NAME_RE as LAB_NS
    from nf.net.netns import pid_alive
    gone = []
    with contextlib.suppress(Exception), deploy.locked(timeout=60):
        for rec in deploy.records():
            m = LAB_NS.match(rec.netns or "")
            if m and not rec.chain and not pid_alive(int(m.group(1))):
                engine.teardown(rec)
                gone.append(rec.name)
    return gone


def counters(dep: Deployment) -> dict[str, int]:
    """Every counter of the deployment, flat: ``<group>.<counter>`` as `nf stats --json` groups
    them (a switch's and a router's ports, a router's route classes, a sketch's epoch, a flow
    table's table), ``verdict.<action>`` / ``verdict_bytes.<action>`` / ``reason.<name>`` from
    the exit point; chain members' prefixed ``<member>/`` (the name in the user's file)."""
    from nf import deploy
    out: dict[str, int] = {}
    names = [dep.name] + list(dep.members)
    for n in names:
        rec = deploy.read(n)
        if rec is None:
            raise RuntimeError(f"deployment {n} is gone")
        prefix = f"{dep.members[n]}/" if n in dep.members else ""
        for k, v in _counters(rec).items():
            out[prefix + k] = v
    return out


def _counters(rec) -> dict[str, int]:
    from nf import engine
    from nf.metrics import _action_stats
    out = {}
    for group, cs in engine.stats(engine.get(rec.kind), rec).items():
        for c, v in cs.items():
            out[f"{group}.{c}"] = int(v)
    s = _action_stats(rec)
    if s is not None:
        d = s.as_dict()
        for a, v in d["packets"].items():
            out[f"verdict.{a}"] = v
        for a, v in d["bytes"].items():
            out[f"verdict_bytes.{a}"] = v
        for r, v in d["reasons"].items():
            out[f"reason.{r}"] = v
    return out


def check_kind(kind) -> None:
    """A kind nf cannot deploy is refused before any lab is built."""
    from nf import engine
    if not kind.deployable:
        raise engine.Undeployable(kind.name, kind.why_not)


__all__ = ["Deployment", "load", "interfaces", "retarget", "up", "down", "counters",
           "cleanup_stale", "ConfigError"]
