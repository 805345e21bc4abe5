"""Tier 3: the same base table on the guest's 6.12 kernel (verifier and test_run there).

parse.h must stay verifier-friendly on older kernels than the host's 6.18; this loads base with
every rule switched on and off (the verifier sees different dead code) and replays the table."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from nf.datapath import BaseCfg, load_base, read_stats
from nf.testing.harness import run_cases

pytestmark = pytest.mark.vm

_spec = importlib.util.spec_from_file_location("_base_table", Path(__file__).with_name("test_base.py"))
_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_table)


def test_table_on_guest_kernel():
    with load_base() as obj:
        run_cases(obj.program("xdp_base"), _table.CASES)
        s = read_stats(obj)
    assert s.total_packets == len(_table.CASES)
    for reason in {r for _, r in _table.DEFAULT if r is not None}:
        assert s.reasons[reason] == sum(1 for _, r in _table.DEFAULT if r == reason), reason


def test_every_rule_loads_on_guest_kernel():
    cfg = BaseCfg.make(drop_fragments=True, drop_l4_protos=[17, 47, 50, 132],
                       drop_dports=[53, 80, 443, 8080])
    with load_base(cfg) as obj:
        s = read_stats(obj)
    assert s.total_packets == 0
