"""The one channel for configuration files: YAML -> pydantic model (extra keys forbidden).

Every NF's config model derives from ``Model``; ``load(path, ModelClass)`` parses YAML and
validates, raising ``ConfigError`` whose message names each offending field by its dotted path,
before anything is loaded into the kernel.
"""
from __future__ import annotations

import collections
import contextlib
import json
import re
from enum import Enum
from pathlib import Path
from typing import Any, Optional, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

M = TypeVar("M", bound="Model")


class Model(BaseModel):
    # no .inf / .nan anywhere: every float ends in a map or a timer as an integer
    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True,
                              allow_inf_nan=False)


# The longest time a config may give in seconds: the Linux bridge's largest ageing_time (a u32
# of centiseconds, IFLA_BR_AGEING_TIME), for the switch's aging and the flow table's idle timeout.
MAX_SECONDS = 42_949_672


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


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):     # libyaml's parser: 1M lines in seconds
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for k, _ in node.value:
            key = self.construct_object(k, deep=True)
            try:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})",
                        k.start_mark)
            except TypeError:        # an unhashable key: PyYAML's own error follows
                break
            seen[key] = k.start_mark.line
        return super().construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)


def read_text(path: Path) -> str:
    """A config or route file as UTF-8 text; a ConfigError naming the line and column of the first
    byte that is not UTF-8 (a Latin-1 comment, a binary file)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(str(path), [("", f"cannot read: {e.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(str(path), [(f"line {line}", f"byte 0x{raw[e.start]:02x} at column {col} "
                                       "is not UTF-8 (save the file as UTF-8)")]) from None
    if "\0" in text:
        raise ConfigError(str(path), [(f"line {text.count(chr(10), 0, text.index(chr(0))) + 1}",
                                       "a NUL byte: not a text file")])
    return text


# Long tables (a million static FDB entries) as block sequences of one-line flow mappings of
# scalars: PyYAML builds ~7 Python nodes per such line (~40 us: 40 s for 1M lines), so runs of
# them are read here, each value resolved as YAML 1.1 would (only forms whose meaning is plain:
# quoted strings without escapes, decimal integers, words that are no YAML 1.1 bool/null);
# a line of any other form ends the run and is left to PyYAML.
_ROW = re.compile(r"^([ \t]*)-[ \t]+\{(.*)\}[ \t]*(?:#.*)?$")
_PAIR = re.compile(r"[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]+(?:'([^'\n]*)'|\"([^\"\\\n]*)\"|"
                   r"([A-Za-z0-9_.\-]+))[ \t]*(?:,|$)")
_INT = re.compile(r"^(?:0|-?[1-9][0-9]*)$")
_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML11 = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_RUN = "__nf_table_run_{}__"
_MIN_RUN = 256


def _row(line: str, no: int, source: str):
    m = _ROW.match(line)
    if m is None:
        return None
    body, pos, row = m.group(2), 0, {}
    while pos < len(body):
        p = _PAIR.match(body, pos)
        if p is None or p.end() == pos:
            return None
        k, sq, dq, plain = p.groups()
        if plain is not None:
            if _INT.match(plain):
                v = int(plain)
            elif _WORD.match(plain) and plain.lower() not in _YAML11:
                v = plain
            else:
                return None
        else:
            v = sq if sq is not None else dq
        if k in row:
            raise ConfigError(source, [(f"line {no}", f"not valid YAML: duplicate key {k!r}")])
        row[k] = v
        pos = p.end()
    return m.group(1), row


def _tables(text: str, source: str) -> tuple[str, dict[str, list]]:
    """``text`` with every long run of table rows replaced by one placeholder item (the line
    count kept, so PyYAML's line numbers stay right), and the rows of each run."""
    lines = text.split("\n")
    if len(lines) < _MIN_RUN:
        return text, {}
    runs: dict[str, list] = {}
    out, i = [], 0
    while i < len(lines):
        r = _row(lines[i], i + 1, source) if lines[i].lstrip().startswith("- {") else None
        j, rows, indent = i, [], r[0] if r else None
        while r is not None and r[0] == indent:      # one run: rows at the same indent
            rows.append(r[1])
            j += 1
            r = _row(lines[j], j + 1, source) if j < len(lines) else None
        if len(rows) >= _MIN_RUN:
            key = _RUN.format(len(runs))
            runs[key] = rows
            out.append(f"{indent}- {key}")
            out += [""] * (len(rows) - 1)
            i = j
        else:
            out += lines[i:max(j, i + 1)]
            i = max(j, i + 1)
    return ("\n".join(out), runs) if runs else (text, {})


def _splice(data, runs: dict[str, list]):
    if isinstance(data, dict):
        return {k: _splice(v, runs) for k, v in data.items()}
    if isinstance(data, list):
        out = []
        for x in data:
            if isinstance(x, str) and x in runs:
                out += runs[x]
            else:
                out.append(_splice(x, runs))
        return out
    return data


_memo: dict | None = None   # text -> data, only inside parse_once()


@contextlib.contextmanager
def parse_once():
    """Within it a file whose text was parsed is not parsed again: kind detection validates one
    file against every kind, and parsing a 1M-row file is most of that time. Outside it nothing
    is kept (a long-lived process holds no parsed config)."""
    global _memo
    _memo = {}
    try:
        yield
    finally:
        _memo = None


def _parse(path: Path):
    raw = read_text(path)
    if _memo is not None and raw in _memo:     # same text, same data (validation never mutates it)
        return _memo[raw]
    text, runs = _tables(raw, str(path))
    try:
        data = yaml.load(text, Loader=_Loader)
        if runs:
            data = _splice(data, runs)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), [(where, f"not valid YAML: {getattr(e, 'problem', e)}")]) from None
    if _memo is not None:
        _memo[raw] = data
    return data


def load(path: str | Path, model: type[M]) -> M:
    data = _parse(Path(path))
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


def _missing(items: list, other: list) -> list:
    """The items of ``items`` that ``other`` lacks, counted as a multiset (by canonical JSON)."""
    left = collections.Counter(json.dumps(x, sort_keys=True) for x in other)
    out = []
    for x in items:
        k = json.dumps(x, sort_keys=True)
        if left[k]:
            left[k] -= 1
        else:
            out.append(x)
    return out


def diff(old, new, path: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted path, old, new) per changed leaf of two JSON-ready configs; lists of equal length
    compare item by item (``drop_dports[0]``); others by their items: ``routes[-]`` (old item,
    None) for each item gone, ``routes[+]`` (None, new item) for each one added, so a one-route
    change prints one line, not both lists."""
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
    elif isinstance(old, list) and isinstance(new, list):
        out += [(f"{path}[-]", x, None) for x in _missing(old, new)]
        out += [(f"{path}[+]", None, x) for x in _missing(new, old)]
    elif old != new:
        out.append((path, old, new))
    return out
