"""`variant: auto`: the datapath variant measured faster for this config, and why.

The decision comes from a table of measurements, nf/variants.json, that `nf bench` regenerates
(from its guest section) and the package ships. Per NF it holds cells of guest instructions per
packet of the pure-eBPF and the eNetSTL variant, both counted in one QEMU TCG boot with the
module loaded (ARCHITECTURE.md §6: the one exact, repeatable comparison of the two; wall time
under TCG is not a speed measure), keyed by the config fields that change the answer (the
sketch's depth, the flow table's hash, ...). auto picks eNetSTL only when the module is loaded
and the cell nearest to the config measured it strictly cheaper; without a measurement for the
config it stays on pure eBPF, the reference path.

    choose("sketch", cfg, module=True)  -> Choice("enetstl", "auto: eNetSTL 535 vs pure 920 ...")
    auto(kind, cfg, module) -> "pure" | "enetstl"      # the hook where `auto` is resolved
    why(kind, cfg, variant) -> str                      # what `nf show` prints beside the variant
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

TABLE = Path(__file__).with_name("variants.json")

# per NF: the config fields a cell is keyed by, and how a config value matches a cell's
# ("near": the nearest measured value, on a log scale; "eq": the same value)
DIMENSIONS: dict[str, dict[str, str]] = {
    "sketch": {"depth": "near"},
    "flow_table": {"hash": "eq"},
    "l2_switch": {"fdb_size": "near"},
    "router": {},
}


@dataclass(frozen=True)
class Choice:
    variant: str          # "pure" | "enetstl"
    reason: str


def load_table(path: Path | None = None) -> dict:
    """The table ({} when missing: every auto is pure eBPF then, and says so)."""
    try:
        return json.loads((path or TABLE).read_text())
    except FileNotFoundError:
        return {}


def _value(v):
    return getattr(v, "value", v)


def _cell(entry: dict, kind: str, cfg) -> dict | None:
    """The cell measured closest to ``cfg``: every "eq" dimension equal, then the smallest log
    distance over the "near" ones; None when no cell matches."""
    dims = DIMENSIONS.get(kind, {})
    best, dist = None, math.inf
    for c in entry.get("cells", []):
        d = 0.0
        for name, how in dims.items():
            want, have = _value(getattr(cfg, name, None)), c.get(name)
            if how == "eq":
                if want != have:
                    break
            elif want is None or have is None:
                break
            else:
                d += abs(math.log(max(float(want), 1e-9) / max(float(have), 1e-9)))
        else:
            if d < dist:
                best, dist = c, d
    return best


def _where(kind: str, cell: dict) -> str:
    return ", ".join(f"{k}={cell[k]}" for k in DIMENSIONS.get(kind, {}) if k in cell)


def choose(kind: str, cfg, module: bool, table: dict | None = None) -> Choice:
    """The variant `auto` runs for ``cfg`` of NF ``kind``, with the measured reason."""
    if not module:
        return Choice("pure", "auto: the enetstl module is not loaded")
    table = load_table() if table is None else table
    entry = table.get("nfs", {}).get(kind)
    cell = _cell(entry, kind, cfg) if entry else None
    if cell is None:
        return Choice("pure", f"auto: no measurement of {kind} for this config in the variant "
                              "table (nf bench); pure eBPF, the reference path")
    p, e = float(cell["pure"]), float(cell["enetstl"])
    at = _where(kind, cell)
    measured = (f"{entry.get('measure', 'guest insns/packet')}{f' at {at}' if at else ''}: "
                f"eNetSTL {e:.0f} vs pure {p:.0f} ({e / p:.2f}x; {entry.get('source', 'nf bench')})")
    if e < p:
        return Choice("enetstl", f"auto: measured faster, {measured}")
    return Choice("pure", f"auto: eNetSTL not faster here, {measured}")


def auto(kind: str, cfg, module: bool) -> str:
    """The hook where `variant: auto` is resolved: "pure" or "enetstl"."""
    return choose(kind, cfg, module).variant


def why(kind: str, cfg, variant: str, module: bool | None = None) -> str:
    """Why ``variant`` runs for ``cfg`` (recorded at `nf up`, printed by `nf show`)."""
    asked = _value(getattr(cfg, "variant", "auto"))
    if asked != "auto":
        return f"asked for in the config ({asked})"
    if module is None:
        from nf import kmod
        module = kmod.is_loaded()
    c = choose(kind, cfg, module)
    if c.variant != _value(variant):
        return f"auto resolved to {_value(variant)} at load; the table now says {c.variant}: {c.reason}"
    return c.reason


# ---- the table, from nf bench's guest section --------------------------------------------------

def from_guest(data: dict, source: str) -> dict:
    """The table's NF entries from nf.bench.guest's JSON (the NFs it measured)."""
    nfs: dict = {}
    sk = data.get("sketch")
    if sk:
        nfs["sketch"] = {"measure": "guest insns/packet, IPv4 5-tuple", "source": source,
                         "cells": [{"depth": int(d), "pure": r["pure"], "enetstl": r["enetstl"]}
                                   for d, r in sorted(sk["rows"].items(), key=lambda x: int(x[0]))]}
    ft = data.get("flow_table")
    if ft:
        ins, cells = ft["insns"], []
        for hk, pre in (("mul64", ""), ("crc32c", "crc32c:")):
            try:
                cost = {v: sum(ins[f"{pre}{v}/{k}/75"] - ins[f"{pre}base/{k}/75"] for k in ("hit", "miss"))
                        for v in ("pure", "enetstl")}
            except KeyError:
                continue
            cells.append({"hash": hk, **{v: round(c, 1) for v, c in cost.items()}})
        nfs["flow_table"] = {"measure": "guest lookup insns, hit + miss at 75 % load", "source": source,
                             "cells": cells}
    rt = data.get("router")
    if rt and "dir v4 ecmp (pure crc)" in rt.get("rows", {}):
        r = rt["rows"]
        nfs["router"] = {"measure": "guest insns/packet, IPv4 ECMP (the kfunc's one path)", "source": source,
                         "cells": [{"pure": r["dir v4 ecmp (pure crc)"], "enetstl": r["dir v4 ecmp"]}]}
    return nfs


def from_switch_scale(rows: list[dict], source: str) -> dict:
    """The switch's entry from nf.bench.scale.fdb rows: native ns per lookup (hit + miss, random
    keys, 75 % full) of the pure variant's hash map and the eNetSTL variant's bucketised table,
    per FDB size. Native time is a fair judge here: the eNetSTL variant's lookup calls no kfunc
    (its compare is the SWAR one), and what tells the tables apart is the cache misses a lookup
    takes, which guest instruction counts do not see."""
    return {"l2_switch": {
        "measure": "native ns/lookup, hit + miss, random keys, 75 % full", "source": source,
        "cells": [{"fdb_size": r["size"], "pure": round(r["hash_hit_ns"] + r["hash_miss_ns"], 1),
                   "enetstl": round(r["efdb_hit_ns"] + r["efdb_miss_ns"], 1)} for r in rows]}}


def merge(old: dict, nfs: dict, method: str) -> dict:
    """``old`` with the NFs of a new run replaced (a run of some NFs keeps the others' cells)."""
    return {"method": method, "nfs": {**old.get("nfs", {}), **nfs}}
