"""The one channel for configuration files: YAML -> pydantic model (extra keys forbidden).

Every NF's config model derives from ``Model``; ``load(path, ModelClass)`` parses YAML and
validates, raising ``ConfigError`` whose message names each offending field by its dotted path,
before anything is loaded into the kernel.
"""
from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import Any, Optional, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

M = TypeVar("M", bound="Model")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class ConfigError(ValueError):
    """An invalid config. ``errors`` is a list of (dotted field path, message)."""

    def __init__(self, source: str, errors: list[tuple[str, str]]):
        self.source = source
        self.errors = errors
        lines = [f"{source}: invalid config"] + [f"  {loc or '<root>'}: {msg}" for loc, msg in errors]
        super().__init__("\n".join(lines))


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate(data: Any, model: type[M], source: str = "<config>") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, [(_loc(err["loc"]), err["msg"]) for err in e.errors()]) from None


def load(path: str | Path, model: type[M]) -> M:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(str(path), [("", f"cannot read: {e.strerror}")]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), [(where, f"not valid YAML: {getattr(e, 'problem', e)}")]) from None
    return validate(data if data is not None else {}, model, str(path))


def json_schema(model: type[Model]) -> str:
    return json.dumps(model.model_json_schema(), indent=2)


# ---- what every NF config shares ------------------------------------------------------------------
class AttachMode(str, Enum):
    auto = "auto"
    native = "native"
    generic = "generic"


class Variant(str, Enum):
    auto = "auto"          # eNetSTL when the enetstl module is loaded, else pure
    pure = "pure"          # pure eBPF
    enetstl = "enetstl"    # the module's kfuncs


class Channel(str, Enum):
    """How `nf apply` changes a config field, declared once on the field (``Annotated[T,
    RUNTIME]``). A field without a mark needs down + up; inside a marked field the deepest mark on
    a changed path wins (``ports[1].learning`` may be runtime while ``ports`` is not)."""
    runtime = "runtime"            # in place on the pinned maps, by the NF's runtime()
    program = "new program"        # rodata: a new program on the same maps, swapped in
    redeploy = "needs down/up"     # sizes, seeds, key layout, interfaces: state would be lost


RUNTIME, PROGRAM = Channel.runtime, Channel.program
INSTANCE_NAME = r"^[A-Za-z0-9_-]{1,32}$"     # bpffs refuses dots in pin names


def instance_name(default: str) -> Any:
    """The ``name`` field with an NF's default (each NF keeps its own default name)."""
    return Field(default, pattern=INSTANCE_NAME,
                 description="instance name: pins live under /sys/fs/bpf/xdp-nf/<name> "
                             "(no dots: bpffs refuses them)")


class NFConfig(Model):
    """The fields every NF config has. Interfaces differ in shape per NF (names, router ports
    with addresses, switch ports with VLANs): ``interface_names()`` is the one view of them."""
    name: str = Field(pattern=INSTANCE_NAME)
    netns: Optional[str] = Field(default=None, description="network namespace of the interfaces "
                                                           "(default: current)")
    attach: AttachMode = Field(default=AttachMode.auto, description="XDP attach mode")
    variant: Variant = Field(default=Variant.auto, description="auto: eNetSTL when the enetstl "
                                                               "module is loaded, else pure eBPF")

    def interface_names(self) -> list[str]:
        return [i if isinstance(i, str) else i.name for i in getattr(self, "interfaces", [])]


def _channel_mark(field) -> Channel | None:
    return next((m for m in field.metadata if isinstance(m, Channel)), None)


def _models_in(tp) -> list[type]:
    """Model classes inside an annotation (list[Port], Optional[Icmp], ...)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in get_args(tp) for m in _models_in(a)]


def channel_of(model: type[BaseModel], path: str) -> Channel:
    """The channel of a changed field, by its dotted path (``icmp.rate``, ``routes[2].via[0]``)."""
    found = Channel.redeploy
    cls: type[BaseModel] | None = model
    for name in re.findall(r"[A-Za-z_]\w*", path):
        field = cls.model_fields.get(name) if cls is not None else None
        if field is None:
            break
        found = _channel_mark(field) or found
        inner = _models_in(field.annotation)
        cls = inner[0] if inner else None
    return found


def diff(old, new, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, old, new) per changed leaf of two JSON-ready configs; lists of equal length
    compare item by item (``drop_dports[0]``), others as a whole."""
    out = []
    if isinstance(old, dict) and isinstance(new, dict):
        for k in list(old) + [k for k in new if k not in old]:
            p = f"{path}.{k}" if path else k
            if k not in old or k not in new:
                out.append((p, old.get(k), new.get(k)))
            else:
                out += diff(old[k], new[k], p)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            out += diff(a, b, f"{path}[{i}]")
    elif old != new:
        out.append((path, old, new))
    return out
