"""nf/bpf/layout.py: every ctypes mirror in the project matches the BTF of its built object, and a
tampered mirror is reported naming the tampered field. Root-less: reads BTF only."""
from __future__ import annotations

import ctypes
import functools

import pytest

from nf.bpf.build import build
from nf.bpf.layout import (Btf, LayoutMismatch, MirrorError, check_layout, discover_mirrors,
                           layout_mismatches, mirror_objects)
from nf.datapath import BaseCfg, NfStats

MIRRORS = discover_mirrors()
PAIRS = [(m, o) for m in MIRRORS for o in mirror_objects(m)]


@functools.lru_cache(maxsize=None)
def _obj(name: str) -> str:
    return str(build(name))


def _require_matching(mirror: type, obj: str) -> None:
    """Tamper tests need an untampered match first; a drifted mirror fails once, in
    test_mirror_matches_btf, not again here."""
    if layout_mismatches(mirror, _obj(obj)):
        pytest.skip(f"{mirror.__qualname__} itself mismatches (reported by test_mirror_matches_btf)")


def _cname(m: type) -> str:
    return m.__c_struct__.split()[1]


def _copy(mirror: type, fields: list) -> type:
    """A copy of `mirror` with other _fields_ (the tampered twin)."""
    base = ctypes.Union if issubclass(mirror, ctypes.Union) else ctypes.Structure
    ns = {"__c_struct__": mirror.__c_struct__, "_fields_": fields}
    if hasattr(mirror, "_pack_"):
        ns["_pack_"] = mirror._pack_
    return type(f"Tampered{mirror.__name__}", (base,), ns)


def _resized(ftype):
    """A type of another size, so the field's size or length differs from C."""
    if issubclass(ftype, ctypes.Array):
        return ftype._type_ * (ftype._length_ + 1)
    if issubclass(ftype, (ctypes.Structure, ctypes.Union)):
        return ftype * 2
    return {1: ctypes.c_uint16, 2: ctypes.c_uint32, 4: ctypes.c_uint64,
            8: ctypes.c_uint32}[ctypes.sizeof(ftype)]


def test_discovery_finds_the_shared_mirrors():
    assert NfStats in MIRRORS and BaseCfg in MIRRORS
    for m in MIRRORS:
        assert mirror_objects(m), m


@pytest.mark.parametrize("mirror,obj", PAIRS, ids=[f"{m.__qualname__}@{o}" for m, o in PAIRS])
def test_mirror_matches_btf(mirror, obj):
    check_layout(mirror, _obj(obj))  # raises LayoutMismatch listing every difference


@pytest.mark.parametrize("mirror,obj", PAIRS, ids=[f"{m.__qualname__}@{o}" for m, o in PAIRS])
def test_every_resized_field_is_named(mirror, obj):
    _require_matching(mirror, obj)
    with Btf(_obj(obj)) as btf:
        for i, (name, ftype, *_) in enumerate(mirror._fields_):
            fields = list(mirror._fields_)
            fields[i] = (name, _resized(ftype))
            out = layout_mismatches(_copy(mirror, fields), btf)
            assert any(m.startswith(f"{_cname(mirror)}.{name}") for m in out), (name, out)


@pytest.mark.parametrize("mirror,obj", PAIRS, ids=[f"{m.__qualname__}@{o}" for m, o in PAIRS])
def test_moved_field_is_named(mirror, obj):
    _require_matching(mirror, obj)
    fields = list(mirror._fields_)
    if len(fields) < 2:
        pytest.skip("one field: nothing to move")
    fields[0], fields[1] = fields[1], fields[0]
    with pytest.raises(LayoutMismatch) as ei:
        check_layout(_copy(mirror, fields), _obj(obj))
    text = str(ei.value)
    assert f"{_cname(mirror)}.{fields[0][0]}: offset" in text, text
    assert f"{_cname(mirror)}.{fields[1][0]}: offset" in text, text


def test_tampered_base_cfg_report_is_exact():
    """action u32 -> u16: alignment keeps every other member in place, so exactly one line."""
    fields = [("action", ctypes.c_uint16)] + list(BaseCfg._fields_[1:])
    with pytest.raises(LayoutMismatch) as ei:
        check_layout(_copy(BaseCfg, fields), _obj("base/base"))
    assert ei.value.mismatches == [
        "base_cfg.action: size 2 in mirror (c_ushort), 4 in C (unsigned int (4 bytes))"]
    assert "does not match struct base_cfg in the BTF of" in str(ei.value)


def test_tampered_stats_array_shrunk():
    fields = [("packets", ctypes.c_uint64 * 4), *NfStats._fields_[1:]]
    out = layout_mismatches(_copy(NfStats, fields), _obj("base/base"))
    assert out == [
        "nf_stats: size 200 in mirror, 208 in C",
        "nf_stats.packets: array length 4 in mirror, 5 in C",
        "nf_stats.bytes: offset 32 in mirror, 40 in C",
        "nf_stats.reasons: offset 72 in mirror, 80 in C",
    ]


def test_missing_extra_and_signedness():
    fields = [("action", ctypes.c_int32), ("malformed_action", ctypes.c_uint32),
              ("drop_fragments", ctypes.c_uint8),
              ("drop_l4_protos", ctypes.c_uint8 * 4), ("pad", ctypes.c_uint8),
              ("drop_dports", ctypes.c_uint16 * 4), ("extra", ctypes.c_uint32)]
    out = layout_mismatches(_copy(BaseCfg, fields), _obj("base/base"))
    assert "base_cfg.action: mirror is signed (c_int), C is unsigned int (unsigned)" in out
    assert any(m.startswith("base_cfg.extra: in mirror (offset 24) but not in C") for m in out)
    short = [f for f in BaseCfg._fields_ if f[0] != "pad"]
    out = layout_mismatches(_copy(BaseCfg, short), _obj("base/base"))
    assert any(m.startswith("base_cfg.pad: in C (offset 13") and "missing from mirror" in m
               for m in out), out


def test_unknown_struct_and_bad_declaration():
    class Ghost(ctypes.Structure):
        __c_struct__ = "struct no_such_struct"
        _fields_ = [("x", ctypes.c_uint32)]

    out = layout_mismatches(Ghost, _obj("base/base"))
    assert len(out) == 1 and "struct no_such_struct: not in the BTF" in out[0]

    class Bad(ctypes.Structure):
        __c_struct__ = "nf_stats"
        _fields_ = [("x", ctypes.c_uint32)]

    with pytest.raises(MirrorError, match="must be 'struct <name>'"):
        layout_mismatches(Bad, _obj("base/base"))
    with pytest.raises(FileNotFoundError):
        Btf("/nonexistent.o")


def test_nested_struct_mismatch_names_the_inner_field():
    from nf.datapath import PktMeta, ProbeOut

    inner = [(n, ctypes.c_uint16 * 3) if n == "vlan_ids" else (n, t) for n, t in PktMeta._fields_]
    outer = [(n, _copy(PktMeta, inner)) if n == "meta" else (n, t) for n, t in ProbeOut._fields_]
    out = layout_mismatches(_copy(ProbeOut, outer), _obj("base/parse_probe"))
    assert "probe_out.meta.vlan_ids: array length 3 in mirror, 2 in C" in out
    assert "probe_out.meta.sport: offset 18 in mirror, 16 in C" in out
    assert any(m.startswith("probe_out.rc: offset") for m in out), out
