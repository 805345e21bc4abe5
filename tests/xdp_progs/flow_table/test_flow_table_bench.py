"""Benchmark (not a timed test; ``pytest -m bench``): per-packet lookup cost of the cuckoo flow
table at 25/50/75/95 % load, hits and misses, by the method of ARCHITECTURE.md §6. The measuring
code is nf/bench/flow_table.py (shared with `nf bench`):

- Guest instructions per packet (QEMU TCG plugin, one boot, both variants on one shared table,
  the BPF hash map baseline beside them), empty program subtracted.
- Native ns/packet on the host for the pure-eBPF variant and for a BPF_MAP_TYPE_HASH holding the
  same flows (test_run repeat, kernel-reported duration, median of rounds).
Prints the ratios next to the targets: eNetSTL <= 1/2 of pure at 75 % (instructions); pure no
slower than the hash map natively. Once per key hash (mul64, the default; crc32c).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from nf.bench.flow_table import native, report


@pytest.mark.bench
@pytest.mark.parametrize("hash", ["mul64", "crc32c"])
def test_lookup_cost(hash):
    from nf.vm import Vm, prerequisites
    from nf.vm import insncount
    from nf.vm.runner import repo_python
    from nf.bpf.build import build
    from nf.testing.tiers import require

    ns = native(hash=hash)
    print("\n" + report(None, ns), flush=True)
    ins = None
    missing = prerequisites()
    require(not missing, f"VM tier unavailable: {missing}")
    build("flow_table/flow_table")
    build("flow_table/flow_table_hash")
    with Vm(insmod=True, **insncount.vm_options()) as vm:
        r = vm.run([repo_python(), "-m", "nf.bench.flow_table", "--guest", "--hash", hash],
                   timeout=1500,
                   on_output=lambda stream, chunk: stream == "e" and sys.stderr.write(
                       chunk.decode(errors="replace")))
        assert r.rc == 0, r.output[-3000:]
        line = [ln for ln in r.stdout.decode().splitlines() if ln.startswith("{")][-1]
        ins = json.loads(line)
    text = report(ins, ns)
    print(f"\nhash {hash}\n" + text)
    out = os.environ.get("NF_BENCH_OUT")
    if out:
        Path(out).with_suffix(f".{hash}").write_text(
            json.dumps({"insns": ins, "ns": ns}, indent=1) + "\n" + text + "\n")
    for v in list(ins.values()) + list(ns.values()):
        assert v > 0


@pytest.mark.bench
def test_flood_of_new_flows_against_a_full_table():
    """A flood of distinct new flows against a full table (the learning table refuses them: its
    search budget, refusal cache and full key store bound the work) costs at most 3x a lookup
    miss per packet (native, replay baseline subtracted). Prints the ratio and where the
    packets went."""
    from nf.bench.flow_table import flood, flood_report
    r = flood()
    print("\n" + flood_report(r))
    assert all(x["ratio"] <= 3 for x in r.values()), flood_report(r)
