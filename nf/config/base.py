"""The one channel for configuration files: YAML -> pydantic model (extra keys forbidden).

Every NF's config model derives from ``Model``; ``load(path, ModelClass)`` parses YAML and
validates, raising ``ConfigError`` whose message names each offending field by its dotted path,
before anything is loaded into the kernel.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

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
