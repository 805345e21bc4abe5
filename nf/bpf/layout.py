"""Check ctypes mirrors of C structs against the BTF of a built BPF object.

A mirror is a ``ctypes.Structure`` (or ``Union``) that declares which C type it mirrors and
which object's BTF holds it::

    class NfStats(ctypes.Structure):
        __c_struct__ = "struct nf_stats"
        __bpf_object__ = "base/base"          # or a tuple: every object that uses the struct
        _fields_ = [...]

``check_layout(NfStats, "build/bpf/base/base.o")`` compares the total size, then for every
member (recursively through nested structs and arrays) the name, byte offset, size, array
length and integer signedness, and raises :class:`LayoutMismatch` listing *every* difference,
each naming the field path (``nf_stats.bytes[]``).

Why libbpf's BTF API through ctypes rather than ``bpftool btf dump -j``: it is the same parser
(and ELF .BTF extraction) that loads the object, it runs in-process with no subprocess and no
dependency on bpftool's JSON shape (which changed across versions), and the records it returns
(struct btf_type / btf_member / btf_array) are kernel uapi (linux/btf.h), stable by ABI.
Only four calls are used: btf__parse, btf__find_by_name_kind, btf__type_by_id,
btf__name_by_offset (+ btf__free).

``discover_mirrors()`` finds every mirror class in the ``nf`` package by scanning sources for
``__c_struct__`` and importing only those modules.
"""
from __future__ import annotations

import ctypes
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

__all__ = ["Btf", "LayoutMismatch", "check_layout", "layout_mismatches", "discover_mirrors",
           "mirror_objects", "MirrorError"]

# uapi linux/btf.h
KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM = 1, 2, 3, 4, 5, 6
KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT = 7, 8, 9, 10, 11
KIND_FLOAT, KIND_TYPE_TAG, KIND_ENUM64 = 16, 18, 19
_MODIFIERS = {KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG}
_KIND_NAMES = {1: "int", 2: "pointer", 3: "array", 4: "struct", 5: "union", 6: "enum", 7: "fwd",
               8: "typedef", 9: "volatile", 10: "const", 11: "restrict", 12: "func",
               13: "func_proto", 14: "var", 15: "datasec", 16: "float", 17: "decl_tag",
               18: "type_tag", 19: "enum64"}
BTF_INT_SIGNED = 1

ROOT = Path(__file__).resolve().parents[2]


class MirrorError(ValueError):
    """A mirror class is not usable (bad __c_struct__, bitfields, unknown object...)."""


class LayoutMismatch(AssertionError):
    """A mirror differs from its C type; ``mismatches`` lists every difference."""

    def __init__(self, mirror: type, c_name: str, obj: str, mismatches: list[str]):
        self.mirror, self.c_name, self.obj, self.mismatches = mirror, c_name, obj, mismatches
        lines = "\n".join(f"  - {m}" for m in mismatches)
        super().__init__(f"{mirror.__module__}.{mirror.__qualname__} does not match {c_name} in "
                         f"the BTF of {obj} ({len(mismatches)} mismatch"
                         f"{'es' if len(mismatches) != 1 else ''}):\n{lines}")


# ---- libbpf (a private CDLL instance: argtypes set here do not leak into nf.bpf.libbpf) ----
class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32),
                ("size_or_type", ctypes.c_uint32)]


class _BtfMember(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("offset", ctypes.c_uint32)]


class _BtfArray(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("index_type", ctypes.c_uint32),
                ("nelems", ctypes.c_uint32)]


_lib: ctypes.CDLL | None = None


def _libbpf() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        for name in ("/usr/lib/x86_64-linux-gnu/libbpf.so.1", "libbpf.so.1"):
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                break
            except OSError:
                continue
        else:
            raise MirrorError("libbpf.so.1 not found: run scripts/setup.sh")
        lib.btf__parse.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        lib.btf__parse.restype = ctypes.c_void_p
        lib.btf__free.argtypes = [ctypes.c_void_p]
        lib.btf__free.restype = None
        lib.btf__find_by_name_kind.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32]
        lib.btf__find_by_name_kind.restype = ctypes.c_int32
        lib.btf__type_by_id.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__type_by_id.restype = ctypes.c_void_p
        lib.btf__name_by_offset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.btf__name_by_offset.restype = ctypes.c_char_p
        _lib = lib
    return _lib


@dataclass(frozen=True)
class BtfMember:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int  # 0 = not a bitfield


@dataclass(frozen=True)
class BtfTypeInfo:
    id: int
    kind: int
    name: str
    size_or_type: int
    vlen: int
    kflag: bool
    addr: int  # address of the struct btf_type (records follow it)

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES.get(self.kind, f"kind{self.kind}")


class Btf:
    """The BTF of one ELF object (or raw BTF file), parsed by libbpf; a context manager."""

    def __init__(self, path: str | os.PathLike):
        self._ptr: int | None = None
        self.path = str(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such BPF object: {self.path}")
        lib = _libbpf()
        ptr = lib.btf__parse(self.path.encode(), None)
        if not ptr:
            err = ctypes.get_errno()
            raise MirrorError(f"libbpf cannot parse BTF of {self.path}: {os.strerror(err)} "
                              "(was it built with -g?)")
        self._ptr = ptr

    def close(self) -> None:
        if self._ptr:
            _libbpf().btf__free(self._ptr)
            self._ptr = None

    def __enter__(self) -> "Btf":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # last resort; callers use the context manager
        self.close()

    def _p(self) -> int:
        if not self._ptr:
            raise MirrorError("BTF already closed")
        return self._ptr

    def name(self, off: int) -> str:
        s = _libbpf().btf__name_by_offset(self._p(), off)
        return s.decode() if s else ""

    def find(self, name: str, kind: int) -> int | None:
        r = _libbpf().btf__find_by_name_kind(self._p(), name.encode(), kind)
        return r if r > 0 else None

    def type(self, type_id: int) -> BtfTypeInfo:
        addr = _libbpf().btf__type_by_id(self._p(), type_id)
        if not addr:
            raise MirrorError(f"BTF of {self.path} has no type id {type_id}")
        t = _BtfType.from_address(addr)
        return BtfTypeInfo(type_id, (t.info >> 24) & 0x1F, self.name(t.name_off), t.size_or_type,
                           t.info & 0xFFFF, bool(t.info >> 31), addr)

    def resolve(self, type_id: int) -> BtfTypeInfo:
        """Skip typedef/const/volatile/restrict/type_tag (bounded: BTF has no modifier loops)."""
        t = self.type(type_id)
        for _ in range(64):
            if t.kind not in _MODIFIERS:
                return t
            t = self.type(t.size_or_type)
        raise MirrorError(f"modifier chain too long at type id {type_id}")

    def members(self, t: BtfTypeInfo) -> list[BtfMember]:
        base = t.addr + ctypes.sizeof(_BtfType)
        out = []
        for i in range(t.vlen):
            m = _BtfMember.from_address(base + i * ctypes.sizeof(_BtfMember))
            if t.kflag:  # offset = bitfield_size << 24 | bit_offset
                out.append(BtfMember(self.name(m.name_off), m.type, m.offset & 0xFFFFFF,
                                     m.offset >> 24))
            else:
                out.append(BtfMember(self.name(m.name_off), m.type, m.offset, 0))
        return out

    def array(self, t: BtfTypeInfo) -> tuple[int, int]:
        a = _BtfArray.from_address(t.addr + ctypes.sizeof(_BtfType))
        return a.type, a.nelems

    def int_signed(self, t: BtfTypeInfo) -> bool:
        enc = ctypes.c_uint32.from_address(t.addr + ctypes.sizeof(_BtfType)).value
        return bool((enc >> 24) & BTF_INT_SIGNED)

    def size(self, type_id: int) -> int:
        t = self.resolve(type_id)
        if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_FLOAT):
            return t.size_or_type
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY:
            elem, n = self.array(t)
            return self.size(elem) * n
        raise MirrorError(f"type id {type_id} ({t.kind_name}) has no size")


# ---- comparison ----
_SIGNED_CODES = set("bhilqg")     # ctypes _type_ codes of signed integers
_UNSIGNED_CODES = set("BHILQ?c")  # c_char counts as unsigned-agnostic byte, c_bool as unsigned


def _parse_c_name(c_name: str) -> tuple[int, str]:
    parts = c_name.split()
    if len(parts) != 2 or parts[0] not in ("struct", "union"):
        raise MirrorError(f"__c_struct__ must be 'struct <name>' or 'union <name>', got {c_name!r}")
    return (KIND_STRUCT if parts[0] == "struct" else KIND_UNION), parts[1]


def _c_type_desc(btf: Btf, type_id: int) -> str:
    t = btf.resolve(type_id)
    if t.kind == KIND_ARRAY:
        elem, n = btf.array(t)
        return f"{_c_type_desc(btf, elem)}[{n}]"
    desc = t.name if t.kind in (KIND_INT, KIND_FLOAT) and t.name else f"{t.kind_name} {t.name}"
    return f"{desc.strip()} ({btf.size(type_id)} bytes)"


def _compare(btf: Btf, py, type_id: int, path: str, out: list[str]) -> None:
    t = btf.resolve(type_id)
    if isinstance(py, type) and issubclass(py, (ctypes.Structure, ctypes.Union)):
        want = KIND_UNION if issubclass(py, ctypes.Union) else KIND_STRUCT
        if t.kind != want:
            out.append(f"{path}: mirror is a {'union' if want == KIND_UNION else 'struct'} "
                       f"({py.__name__}), C has {_c_type_desc(btf, type_id)}")
            return
        _compare_record(btf, py, t, path, out)
        return
    if isinstance(py, type) and issubclass(py, ctypes.Array):
        if t.kind != KIND_ARRAY:
            out.append(f"{path}: mirror is an array {py._type_.__name__}[{py._length_}], "
                       f"C has {_c_type_desc(btf, type_id)}")
            return
        elem, n = btf.array(t)
        if n != py._length_:
            out.append(f"{path}: array length {py._length_} in mirror, {n} in C")
        _compare(btf, py._type_, elem, path + "[]", out)
        return
    # scalar
    psize = ctypes.sizeof(py)
    if t.kind in (KIND_STRUCT, KIND_UNION, KIND_ARRAY):
        out.append(f"{path}: mirror is a scalar {py.__name__} ({psize} bytes), "
                   f"C has {_c_type_desc(btf, type_id)}")
        return
    csize = btf.size(type_id)
    if psize != csize:
        out.append(f"{path}: size {psize} in mirror ({py.__name__}), {csize} in C "
                   f"({_c_type_desc(btf, type_id)})")
        return
    if t.kind == KIND_INT:
        code = getattr(py, "_type_", None)
        if isinstance(code, str) and t.name not in ("char", "_Bool"):
            py_signed = code in _SIGNED_CODES
            c_signed = btf.int_signed(t)
            if py_signed != c_signed:
                out.append(f"{path}: mirror is {'signed' if py_signed else 'unsigned'} "
                           f"({py.__name__}), C is {t.name} "
                           f"({'signed' if c_signed else 'unsigned'})")


def _compare_record(btf: Btf, py, t: BtfTypeInfo, path: str, out: list[str]) -> None:
    if ctypes.sizeof(py) != t.size_or_type:
        out.append(f"{path}: size {ctypes.sizeof(py)} in mirror, {t.size_or_type} in C")
    cmembers = btf.members(t)
    by_name = {m.name: m for m in cmembers}
    if "" in by_name:
        raise MirrorError(f"{path}: anonymous members are not supported by the layout checker")
    py_names = []
    for f in py._fields_:
        name, ftype = f[0], f[1]
        if len(f) > 2:
            raise MirrorError(f"{path}.{name}: bitfields are not supported in mirrors")
        py_names.append(name)
        fpath = f"{path}.{name}"
        cm = by_name.get(name)
        if cm is None:
            out.append(f"{fpath}: in mirror (offset {getattr(py, name).offset}) but not in C")
            continue
        if cm.bitfield_size:
            out.append(f"{fpath}: C member is a {cm.bitfield_size}-bit bitfield, "
                       "mirrors cannot express it")
            continue
        poff, coff = getattr(py, name).offset, cm.bit_offset // 8
        if cm.bit_offset % 8 or poff != coff:
            out.append(f"{fpath}: offset {poff} in mirror, {coff} in C")
        _compare(btf, ftype, cm.type_id, fpath, out)
    for cm in cmembers:
        if cm.name not in py_names:
            out.append(f"{path}.{cm.name}: in C (offset {cm.bit_offset // 8}, "
                       f"{_c_type_desc(btf, cm.type_id)}) but missing from mirror")
    order_py = [n for n in py_names if n in by_name]
    order_c = [m.name for m in cmembers if m.name in py_names]
    if order_py != order_c and not out:
        out.append(f"{path}: member order differs: mirror {order_py}, C {order_c}")


def _open(btf_or_path) -> tuple[Btf, bool]:
    if isinstance(btf_or_path, Btf):
        return btf_or_path, False
    return Btf(btf_or_path), True


def layout_mismatches(mirror: type, btf_or_path, c_name: str | None = None) -> list[str]:
    """Every difference between ``mirror`` and its C type (empty list when they match)."""
    c_name = c_name or getattr(mirror, "__c_struct__", None)
    if not c_name:
        raise MirrorError(f"{mirror.__qualname__} has no __c_struct__ and no c_name was given")
    kind, name = _parse_c_name(c_name)
    btf, own = _open(btf_or_path)
    try:
        tid = btf.find(name, kind)
        if tid is None:
            return [f"{c_name}: not in the BTF of {btf.path} (is it used by a map, a global or a "
                    "function of that object?)"]
        out: list[str] = []
        _compare(btf, mirror, tid, name, out)
        return out
    finally:
        if own:
            btf.close()


def check_layout(mirror: type, btf_or_path, c_name: str | None = None) -> None:
    """Raise :class:`LayoutMismatch` listing every difference between mirror and C type."""
    c_name = c_name or getattr(mirror, "__c_struct__", None)
    out = layout_mismatches(mirror, btf_or_path, c_name)
    if out:
        path = btf_or_path.path if isinstance(btf_or_path, Btf) else str(btf_or_path)
        raise LayoutMismatch(mirror, c_name, path, out)


# ---- discovery ----
def mirror_objects(mirror: type) -> tuple[str, ...]:
    """The ``__bpf_object__`` names of a mirror (one string or a tuple of them)."""
    objs = getattr(mirror, "__bpf_object__", None)
    if isinstance(objs, str):
        return (objs,)
    if isinstance(objs, (tuple, list)) and objs and all(isinstance(o, str) for o in objs):
        return tuple(objs)
    raise MirrorError(f"{mirror.__module__}.{mirror.__qualname__}: __bpf_object__ must be an "
                      f"object name like 'base/base' or a tuple of them, got {objs!r}")


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def discover_mirrors(packages: Iterable[str] = ("nf",), root: Path = ROOT) -> list[type]:
    """Every ctypes Structure/Union declaring ``__c_struct__`` in the given packages.

    Only modules whose source mentions ``__c_struct__`` are imported, so a module unrelated to
    mirrors can never break discovery; an import error in a mirror module propagates (a broken
    mirror module must fail the layout test, not hide its mirrors)."""
    found: dict[tuple[str, str], type] = {}
    for pkg in packages:
        for src in sorted((root / pkg).rglob("*.py")):
            if src.name.startswith(".") or src == Path(__file__).resolve():
                continue
            try:
                if "__c_struct__" not in src.read_text(errors="replace"):
                    continue
            except OSError:
                continue
            mod = importlib.import_module(_module_name(src, root))
            for obj in vars(mod).values():
                if (isinstance(obj, type) and issubclass(obj, (ctypes.Structure, ctypes.Union))
                        and obj.__module__ == mod.__name__ and "__c_struct__" in vars(obj)):
                    found[(obj.__module__, obj.__qualname__)] = obj
    return [found[k] for k in sorted(found)]
