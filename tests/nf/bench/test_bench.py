"""nf/bench: `nf bench --quick` end to end (default tier, host only, under a minute), the report's
rows/targets from a guest result, and `nf replay` into a lab."""
from __future__ import annotations

import json
import os
import re
import time

import pytest
from typer.testing import CliRunner

from nf.bench.report import PLOTS_HINT, load_results, markdown, targets_markdown, write_report
from nf.bench.suite import NFS, Results, apply_guest, machine_info
from nf.cli import app
from nf.testing.tiers import require

ROW = re.compile(r"^\| (\w+) \| (.+?) \| (\w[\w ]*) \| ([\d,.]+) (\S+) \| (.+?) \| (.+?) \| (.+?) \|$")


def nf(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_quick_end_to_end(tmp_path):
    require(os.geteuid() == 0, "needs root (BPF)")
    t = time.monotonic()
    r = nf("bench", "--quick", "--out", tmp_path)
    dt = time.monotonic() - t
    assert r.exit_code == 0, r.output
    assert dt < 60, f"--quick took {dt:.0f} s"
    md = (tmp_path / "RESULTS-quick.md").read_text()
    assert md in r.output                      # printed and written
    assert not (tmp_path / "RESULTS.md").exists()   # a quick run never replaces the full results
    for key in ("kernel (`uname -r`)", "CPU", "nproc", "load average at start", "date"):
        assert f"| {key} |" in md
    assert f"| {os.uname().release} |" in md
    rows = [ROW.match(line) for line in md.splitlines() if line.startswith("| ") and " | native |" in line]
    assert all(rows) and len(rows) >= 20
    by_nf = {}
    for m in rows:
        by_nf.setdefault(m.group(1), []).append(m)
        assert float(m.group(4).replace(",", "")) >= 0
    assert set(by_nf) == set(NFS)
    # every row the quick run is made of, with a number
    whats = [m.group(2) for m in rows]
    for d in (1, 2, 4, 8, 16):
        assert any(w.startswith(f"pure eBPF, d={d},") for w in whats)
    for kind in ("hot", "warm", "cold"):
        assert any(w.startswith(f"v4 1,000 routes, {kind}") for w in whats)
        assert any(w.startswith(f"v4 10,000 routes, {kind}") for w in whats)
        assert any(w.startswith(f"v6 1,000 routes, {kind}") for w in whats)
    for kind in ("hit", "miss"):
        m = next(m for m in rows if m.group(2).startswith(f"pure eBPF lookup, 75 % load, {kind}"))
        assert m.group(7) == "≤ 1" and m.group(8) in ("**yes**", "**NO**")
        assert re.match(r"[\d.]+× \(pure / hash\)", m.group(6))
    assert sum(w.startswith("forward path") for w in whats) == 3
    assert sum(m.group(1) == "l2_switch" for m in rows) == 4     # + the FDB at scale: hit, miss
    for nf_ in ("flow_table", "l2_switch"):                         # tables at scale (issue 18)
        scale = [line for line in md.splitlines() if line.startswith(f"| {nf_} | 65,536 entries")]
        assert [" | native | " in x for x in scale].count(True) == 2
        assert sum(" | memory | " in x and "B/entry" in x for x in scale) == 1
        assert sum(" | wall | " in x and "M keys/s" in x for x in scale) == 1
    data = json.loads((tmp_path / "results-quick.json").read_text())
    assert data["quick"] is True and data["errors"] == []
    assert len([x for x in data["rows"] if x["method"] == "native"]) == len(rows)
    assert {"router_routes", "router_routes_v6", "sketch_depth", "cuckoo_load", "flow_table_scale",
            "l2_switch_scale"} <= set(data["series"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert PLOTS_HINT in r.output
    else:
        for name in ("router_routes", "sketch_depth", "cuckoo_load"):
            png = tmp_path / f"{name}-quick.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["pktgen", "live"])
def test_generator_must_be_known_and_usable(tmp_path, name):
    """An unknown generator, or one this kernel refuses, is a bad command line listing the usable
    ones, before anything is made: no namespace, no output file."""
    from nf.net.netns import list_netns
    from traffic.labgen import probe
    if name == "live" and probe("live").ok:
        pytest.skip("this kernel permits live frames")
    before = list_netns()
    r = nf("bench", "--generator", name, "--only", "router", "--out", tmp_path)
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert ("unknown traffic generator 'pktgen'" if name == "pktgen"
            else "traffic generator 'live' is unavailable here") in out
    assert "tc: available" in out
    assert list_netns() == before and not list(tmp_path.iterdir())


def test_only_rejects_unknown_nf(tmp_path):
    r = nf("bench", "--quick", "--only", "bridge", "--out", tmp_path)
    assert r.exit_code != 0 and "unknown NF 'bridge'" in r.output
    assert not list(tmp_path.iterdir())


def _guest_json():
    ins = {}
    for load in (25, 50, 75, 95):
        for kind in ("hit", "miss"):
            ins.update({f"base/{kind}/{load}": 300.0, f"pure/{kind}/{load}": 700.0,
                        f"enetstl/{kind}/{load}": 480.0 if kind == "hit" else 520.0,
                        f"hash/{kind}/{load}": 600.0})
    ins.update({"crc32c:base/hit/75": 300.0, "crc32c:pure/hit/75": 700.0, "crc32c:enetstl/hit/75": 490.0,
                "crc32c:base/miss/75": 300.0, "crc32c:pure/miss/75": 700.0,
                "crc32c:enetstl/miss/75": 530.0})
    return {
        "kernel": "6.12.x", "errors": [],
        "sketch": {"rows": {"1": {"pure": 371.0, "enetstl": 685.0}, "2": {"pure": 462.0, "enetstl": 704.0},
                            "4": {"pure": 649.0, "enetstl": 600.0}, "8": {"pure": 1023.0, "enetstl": 300.0},
                            "16": {"pure": 1768.0, "enetstl": 1092.0}},
                   "profiles": {"d=8 enetstl": [["cm_add [enetstl]", 218.0]]}},
        "flow_table": {"insns": ins, "loads": [25, 50, 75, 95], "profiles": {}},
        "router": {"rows": {"dir v4 ecmp": 878.0, "dir v4 ecmp (pure crc)": 951.0, "dir v4 /10": 774.0},
                   "profiles": {}},
        "l2_switch": {"rows": {"pure: known unicast": 500.0, "enetstl: known unicast": 400.0},
                      "profiles": {}, "macs": 4096},
    }


def test_guest_rows_and_targets():
    res = Results(quick=False, machine=machine_info())
    apply_guest(res, _guest_json())
    t = {(r.nf, r.what.split(":")[0]): r for r in res.rows}
    sk8 = t[("sketch", "d=8")]
    assert sk8.ratio == pytest.approx(300 / 1023) and sk8.target == "≤ 0.5" and sk8.met is True
    sk2 = t[("sketch", "d=2")]
    assert sk2.target == "< 1" and sk2.met is False          # 704 > 462: eNetSTL loses at d=2
    assert t[("sketch", "d=4")].met is True and t[("sketch", "d=1")].met is None
    hit = t[("flow_table", "75 % load, hit, hash mul64, the default")]
    assert hit.value == 180.0 and hit.ratio == pytest.approx(180 / 400) and hit.met is True
    miss = t[("flow_table", "75 % load, miss, hash mul64, the default")]
    assert miss.ratio == pytest.approx(220 / 400) and miss.met is False
    chit = t[("flow_table", "75 % load, hit, hash crc32c")]      # the other hash, same boot
    assert chit.value == 190.0 and chit.met is True
    assert t[("flow_table", "75 % load, miss, hash crc32c")].ratio == pytest.approx(230 / 400)
    ecmp = t[("router", "dir v4 ecmp")]
    assert ecmp.ratio == pytest.approx(878 / 951) and ecmp.met is None
    sw = t[("l2_switch", "known unicast, 4,096 MACs")]
    assert sw.ratio == pytest.approx(0.8) and sw.target == "≤ 0.9" and sw.met is True
    assert res.series["sketch_depth"]["series"]["eNetSTL guest insns"] == [685.0, 704.0, 600.0, 300.0, 1092.0]
    assert res.series["cuckoo_load"]["series"]["pure hit guest insns"] == [400.0] * 4
    md = markdown(res)
    assert "| sketch | d=8: eNetSTL vs pure eBPF (1023) insns/packet, IPv4 5-tuple | guest insns | 300 insns | " \
           "0.29× (eNetSTL / pure) | ≤ 0.5 | **yes** |" in md
    # sketch d=2,4,8,16 (3 met) + flow table hit/miss for each hash (1 + 1 met) + switch (met)
    assert "Targets met: 6 of 9." in md
    assert "**sketch: d=8 enetstl**: cm_add 218" in md
    tg = targets_markdown(res)
    assert tg.count("\n| ") == 1 + 9 and "| sketch | d=2:" in tg and "| router |" not in tg


def test_results_json_round_trip(tmp_path):
    res = Results(quick=False, machine=machine_info())
    apply_guest(res, _guest_json())
    files = write_report(res, tmp_path, with_plots=False)
    assert files["plots"] == "plots not requested"
    back = load_results(files["json"])
    assert back.rows == res.rows and back.series == res.series
    assert markdown(back) == files["markdown"].read_text()
    assert "variants" not in files                   # no guest section: no variant table


def test_variant_table_beside_the_results(tmp_path):
    """A run's variant entries replace those NFs' in a copy of the table next to the results;
    the shipped nf/variants.json changes only when the results go to the checkout's benchmarks/."""
    from nf import variants
    shipped = variants.TABLE.read_text()
    res = Results(quick=False, machine=machine_info())
    res.variants = variants.from_guest({"sketch": _guest_json()["sketch"]}, "run X")
    files = write_report(res, tmp_path, with_plots=False)
    assert files["variants"] == [tmp_path / "variants.json"]
    t = json.loads((tmp_path / "variants.json").read_text())
    assert t["nfs"]["sketch"]["source"] == "run X" and t["nfs"]["sketch"]["cells"][3]["enetstl"] == 300.0
    assert t["nfs"]["flow_table"] == json.loads(shipped)["nfs"]["flow_table"]
    assert variants.TABLE.read_text() == shipped


@pytest.mark.netns
def test_replay_command_sends_count_frames(make_lab, tmp_path):
    from nf.net.lab import LabSpec
    from traffic import generators as g
    from traffic import pcap
    from traffic.labgen import RxCounter

    lab = make_lab(LabSpec.switch(1, port_gro=False))
    frames = g.fixed_size(200, 7)
    path = tmp_path / "x.pcap"
    pcap.write_pcap(path, frames)
    ns, ifname = lab.tap("h1")
    dns, dif = lab.tap("dut", "p1")
    with RxCounter(dns, dif, "drop") as rx:
        time.sleep(0.2)
        before, bbytes = rx.count(), rx.bytes()
        r = nf("replay", path, "--iface", ifname, "--netns", ns, "--pps", 3000, "--count", 301)
        assert r.exit_code == 0, r.output
        for _ in range(100):
            if rx.count() - before >= 301:
                break
            time.sleep(0.02)
        assert rx.count() - before == 301
        assert rx.bytes() - bbytes == 301 * 200
    assert "301" in r.output
    r = nf("replay", path, "--iface", "no-such-if0", "--count", 1)
    assert r.exit_code != 0 and "no-such-if0" in r.output
