"""nf/variants.py: `variant: auto` from the measured table (no kernel needed)."""
import json
from types import SimpleNamespace

import pytest

from nf import variants
from nf.config.flow_table import FlowTableConfig
from nf.config.l2_switch import L2SwitchConfig
from nf.config.sketch import SketchConfig

# cells as nf bench writes them: eNetSTL loses at d=1, 2 and wins from d=4 on; the flow table's
# eNetSTL wins with crc32c and loses with mul64; the switch has one cell
TABLE = {"method": "m", "nfs": {
    "sketch": {"measure": "guest insns/packet, IPv4 5-tuple", "source": "run A",
               "cells": [{"depth": 1, "pure": 371.0, "enetstl": 685.0},
                         {"depth": 2, "pure": 462.0, "enetstl": 704.0},
                         {"depth": 4, "pure": 649.0, "enetstl": 600.0},
                         {"depth": 8, "pure": 1023.0, "enetstl": 300.0}]},
    "flow_table": {"measure": "lookup insns", "source": "run A",
                   "cells": [{"hash": "mul64", "pure": 500.0, "enetstl": 520.0},
                             {"hash": "crc32c", "pure": 900.0, "enetstl": 400.0}]},
    "l2_switch": {"measure": "known unicast", "source": "run A",
                  "cells": [{"fdb_size": 65536, "pure": 400.0, "enetstl": 400.0}]},
    "router": {"measure": "IPv4 ECMP", "source": "run A", "cells": [{"pure": 832.0, "enetstl": 751.0}]},
}}


def sk(d):
    return SketchConfig(name="s", interfaces=["x"], depth=d, width=256)


@pytest.mark.parametrize("d, want, cell", [(1, "pure", 1), (2, "pure", 2), (3, "enetstl", 4),
                                           (4, "enetstl", 4), (6, "enetstl", 8), (16, "enetstl", 8)])
def test_sketch_depth_picks_the_nearest_measured_depth(d, want, cell):
    c = variants.choose("sketch", sk(d), module=True, table=TABLE)
    assert c.variant == want
    assert f"depth={cell}:" in c.reason and "run A" in c.reason
    assert c.reason.startswith("auto: measured faster" if want == "enetstl" else "auto: eNetSTL not faster")


def test_numbers_and_ratio_in_the_reason():
    c = variants.choose("sketch", sk(8), True, TABLE)
    assert "eNetSTL 300 vs pure 1023 (0.29x" in c.reason


@pytest.mark.parametrize("h, want", [("mul64", "pure"), ("crc32c", "enetstl")])
def test_flow_table_hash_must_match(h, want):
    cfg = FlowTableConfig(name="f", interfaces=["x"], hash=h)
    assert variants.choose("flow_table", cfg, True, TABLE).variant == want
    only_mul = {"nfs": {"flow_table": {"cells": TABLE["nfs"]["flow_table"]["cells"][:1]}}}
    c = variants.choose("flow_table", cfg, True, only_mul)
    assert c.variant == "pure"
    if h == "crc32c":                       # no cell of that hash: no evidence, the reference path
        assert "no measurement of flow_table" in c.reason


def test_a_tie_is_not_faster():
    cfg = L2SwitchConfig.model_validate({"name": "sw", "ports": [{"name": "p1", "vlan": 1}]})
    c = variants.choose("l2_switch", cfg, True, TABLE)
    assert c.variant == "pure" and "1.00x" in c.reason


def test_no_module_or_no_table_is_pure():
    assert variants.choose("sketch", sk(8), False, TABLE) == variants.Choice(
        "pure", "auto: the enetstl module is not loaded")
    for t in ({}, {"nfs": {}}, {"nfs": {"sketch": {"cells": []}}}):
        c = variants.choose("sketch", sk(8), True, t)
        assert c.variant == "pure" and "no measurement" in c.reason
    assert variants.choose("filter", sk(8), True, TABLE).variant == "pure"     # never measured


def test_why_and_the_hooks(tmp_path, monkeypatch):
    path = tmp_path / "variants.json"
    path.write_text(json.dumps(TABLE))
    monkeypatch.setattr(variants, "TABLE", path)
    from nf.nfs import flow_table, kind, l2_switch, sketch
    from nf.nfs import router
    monkeypatch.setattr(kind, "module_present", lambda: True)      # where every KIND resolves
    monkeypatch.setattr(router, "module_present", lambda: True)    # the router's own resolve
    assert router.KIND.resolve(SimpleNamespace(name="r", variant="auto")) == "enetstl"
    assert router.KIND.resolve(SimpleNamespace(name="r", variant="pure")) == "pure"
    assert sketch.Sketch.resolve_variant(sk(8).variant, sk(8)).value == "enetstl"
    assert sketch.Sketch.resolve_variant(sk(1).variant, sk(1)).value == "pure"
    ft = FlowTableConfig(name="f", interfaces=["x"], hash="crc32c")
    assert flow_table.FlowTable(ft).resolve_variant().value == "enetstl"
    ft = FlowTableConfig(name="f", interfaces=["x"])
    assert flow_table.FlowTable(ft).resolve_variant().value == "pure"
    sw = L2SwitchConfig.model_validate({"name": "sw", "ports": [{"name": "p1", "vlan": 1}]})
    assert l2_switch.L2Switch(sw).resolve_variant().value == "pure"
    assert variants.why("sketch", sk(8), "enetstl", module=True).startswith("auto: measured faster")
    assert variants.why("sketch", sk(8), "pure", module=True).startswith(
        "auto resolved to pure at load; the table now says enetstl")
    explicit = SketchConfig(name="s", interfaces=["x"], depth=8, width=256, variant="pure")
    assert variants.why("sketch", explicit, "pure", module=True) == "asked for in the config (pure)"


def test_table_from_the_bench_guest_json():
    ins = {f"{pre}{v}/{k}/75": n for pre, add in (("", 0), ("crc32c:", 10)) for k in ("hit", "miss")
           for v, n in (("base", 300.0), ("pure", 700.0), ("enetstl", 480.0 + add + (40 if k == "miss" else 0)))}
    guest = {"kernel": "6.12.x",
             "sketch": {"rows": {"16": {"pure": 1768.0, "enetstl": 1092.0}, "8": {"pure": 1023.0, "enetstl": 300.0}}},
             "flow_table": {"insns": ins, "loads": [75]},
             "router": {"rows": {"dir v4 ecmp": 878.0, "dir v4 ecmp (pure crc)": 951.0, "dir v4 /10": 774.0}},
             "l2_switch": {"rows": {"pure: known unicast": 500.0, "enetstl: known unicast": 400.0}, "macs": 4096}}
    nfs = variants.from_guest(guest, "run B")
    assert nfs["sketch"]["cells"] == [{"depth": 8, "pure": 1023.0, "enetstl": 300.0},
                                      {"depth": 16, "pure": 1768.0, "enetstl": 1092.0}]
    assert nfs["sketch"]["source"] == "run B"
    # hit + miss beyond the base program: pure 400 + 400, eNetSTL 180 + 220 (mul64), 190 + 230
    assert nfs["flow_table"]["cells"] == [{"hash": "mul64", "pure": 800.0, "enetstl": 400.0},
                                          {"hash": "crc32c", "pure": 800.0, "enetstl": 420.0}]
    assert "l2_switch" not in nfs             # the switch is judged natively (from_switch_scale)
    assert nfs["router"]["cells"] == [{"pure": 951.0, "enetstl": 878.0}]
    assert variants.from_guest({"kernel": "k", "errors": ["sketch: boom"]}, "run C") == {}
    merged = variants.merge(TABLE, {"sketch": nfs["sketch"]}, "m2")
    assert merged["nfs"]["sketch"]["source"] == "run B" and merged["method"] == "m2"
    assert merged["nfs"]["flow_table"] == TABLE["nfs"]["flow_table"]   # the others kept


def test_switch_entry_from_the_native_scale_rows():
    rows = [{"size": 1 << 16, "hash_hit_ns": 20.0, "hash_miss_ns": 15.0, "efdb_hit_ns": 22.0, "efdb_miss_ns": 16.0},
            {"size": 1 << 20, "hash_hit_ns": 110.0, "hash_miss_ns": 74.0, "efdb_hit_ns": 66.7, "efdb_miss_ns": 47.0}]
    t = {"nfs": variants.from_switch_scale(rows, "run S")}
    assert t["nfs"]["l2_switch"]["cells"] == [{"fdb_size": 65536, "pure": 35.0, "enetstl": 38.0},
                                             {"fdb_size": 1 << 20, "pure": 184.0, "enetstl": 113.7}]

    def sw(n):
        return L2SwitchConfig.model_validate({"name": "sw", "ports": [{"name": "p1", "vlan": 1}], "fdb_size": n})
    assert variants.choose("l2_switch", sw(65536), True, t).variant == "pure"
    assert variants.choose("l2_switch", sw(1 << 22), True, t).variant == "enetstl"
    assert "fdb_size=1048576" in variants.choose("l2_switch", sw(1 << 22), True, t).reason
    assert variants.choose("l2_switch", sw(1 << 17), True, t).variant == "pure"    # nearer 64k


def test_the_shipped_table():
    """nf/variants.json (what an installed package decides from): every NF's cells carry both
    variants' costs, and auto picks the cheaper one of each."""
    t = variants.load_table()
    assert t["method"] and set(t["nfs"]) >= {"sketch", "flow_table", "l2_switch"}
    for kind, e in t["nfs"].items():
        assert e["cells"] and e["source"].startswith("nf bench ")
        for cell in e["cells"]:
            assert cell["pure"] > 0 and cell["enetstl"] > 0
            want = "enetstl" if cell["enetstl"] < cell["pure"] else "pure"
            assert variants._cell(e, kind, _Cfg(cell)) is cell
            assert variants.choose(kind, _Cfg(cell), True, t).variant == want


class _Cfg:
    """A config with a cell's dimensions."""

    def __init__(self, cell):
        self.__dict__.update({k: v for k, v in cell.items() if k not in ("pure", "enetstl")})


@pytest.mark.vm
def test_auto_runs_what_the_shipped_table_says_with_the_module(enetstl):
    """In the guest, module loaded: a sketch at each measured depth and a flow table with each
    hash load the variant nf/variants.py picks from the shipped table (the program that runs),
    and the reason names the measurement."""
    from nf.nfs.flow_table import FlowTable
    from nf.nfs.sketch import Sketch
    t = variants.load_table()
    seen = set()
    for cell in t["nfs"]["sketch"]["cells"]:
        cfg = SketchConfig(name="s", interfaces=["x"], depth=cell["depth"], width=256)
        want = "enetstl" if cell["enetstl"] < cell["pure"] else "pure"
        with Sketch(cfg).load() as sk:
            assert sk.variant.value == want, cell
        assert variants.why("sketch", cfg, want, module=True).startswith(
            "auto: measured faster" if want == "enetstl" else "auto: eNetSTL not faster")
        seen.add(want)
    for cell in t["nfs"]["flow_table"]["cells"]:
        want = "enetstl" if cell["enetstl"] < cell["pure"] else "pure"
        ft = FlowTable(size=64, hash=cell["hash"]).load()
        try:
            assert ft.variant.value == want and ft.prog.name == f"xdp_ft_{want}", cell
        finally:
            ft.down()
        seen.add(want)
    assert seen == {"pure", "enetstl"}          # the table decides: not "eNetSTL whenever loaded"
