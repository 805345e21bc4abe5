"""nf/datapath.py: stats mirror arithmetic, reason slots, BaseCfg construction, loader."""
from __future__ import annotations

import ctypes

import pytest

from nf.datapath import (NF_STATS_REASONS, BaseCfg, NfStats, Reason, StatsSummary, XdpAction,
                         load_base, open_base, read_stats, sum_stats)


def _rec(pk: dict, by: dict, rs: dict) -> NfStats:
    r = NfStats()
    for a, v in pk.items():
        r.packets[a] = v
    for a, v in by.items():
        r.bytes[a] = v
    for k, v in rs.items():
        r.reasons[k] = v
    return r


def test_sum_stats_over_cpus():
    recs = [_rec({XdpAction.PASS: 3, XdpAction.DROP: 1}, {XdpAction.PASS: 180, XdpAction.DROP: 64},
                 {Reason.MALFORMED: 1}),
            _rec({XdpAction.PASS: 4, XdpAction.TX: 2}, {XdpAction.PASS: 256, XdpAction.TX: 120},
                 {Reason.nf(7): 5}),
            NfStats()]
    s = sum_stats(recs)
    assert s.cpus == 3
    assert s.packets == {XdpAction.ABORTED: 0, XdpAction.DROP: 1, XdpAction.PASS: 7,
                         XdpAction.TX: 2, XdpAction.REDIRECT: 0}
    assert s.bytes[XdpAction.PASS] == 436 and s.bytes[XdpAction.TX] == 120
    assert s.reasons[Reason.MALFORMED] == 1 and s.reasons[15] == 5 and s.total_packets == 10
    d = s.as_dict()
    assert d["packets"]["pass"] == 7 and d["reasons"]["malformed"] == 1 and d["reasons"]["nf7"] == 5
    assert "none" not in d["reasons"] and "reserved6" not in d["reasons"]   # unused, uncounted
    assert len(d["reasons"]) == NF_STATS_REASONS - 3
    s.nf_reasons = ("no_route", "ttl")          # an NF's own reasons by the names its KIND gives
    d = s.as_dict()["reasons"]
    assert d["no_route"] == 0 and d["ttl"] == 0 and d["nf7"] == 5 and "nf0" not in d


def test_sum_stats_rejects_other_records():
    with pytest.raises(TypeError, match="NfStats"):
        sum_stats([BaseCfg()])
    assert sum_stats([]) == StatsSummary()


def test_reason_slots():
    assert [Reason.nf(i) for i in (0, 7)] == [8, 15]
    with pytest.raises(ValueError):
        Reason.nf(8)


def test_base_cfg_make_and_defaults():
    c = BaseCfg.make(action=XdpAction.TX, drop_fragments=True, drop_l4_protos=[6, 17],
                     drop_dports=[53])
    assert (c.action, c.malformed_action, c.drop_fragments) == (3, 1, 1)
    assert list(c.drop_l4_protos) == [6, 17, 0, 0] and list(c.drop_dports) == [53, 0, 0, 0]
    assert ctypes.sizeof(BaseCfg) == 24 and ctypes.sizeof(NfStats) == 26 * 8
    d = BaseCfg()
    assert (d.action, d.malformed_action, d.drop_fragments) == (XdpAction.PASS, XdpAction.DROP, 0)
    for bad in (dict(malformed_action=7), dict(drop_l4_protos=[256]), dict(drop_dports=[1] * 5)):
        with pytest.raises(ValueError, match="base_cfg"):
            BaseCfg.make(**bad)


def test_compiled_in_defaults_equal_python_defaults():
    """The C initializer of base_cfg (rodata before any set_rodata) equals BaseCfg()."""
    with open_base() as obj:
        assert bytes(obj.get_rodata("base_cfg", BaseCfg)) == bytes(BaseCfg())


def test_open_base_rejects_foreign_config():
    with pytest.raises(TypeError, match="BaseCfg"):
        open_base(NfStats())


def test_read_stats_of_fresh_object_is_zero():
    with load_base() as obj:
        s = read_stats(obj)
    assert s.total_packets == 0 and s.cpus >= 1 and not any(s.reasons.values())
