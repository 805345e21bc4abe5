"""The benchmark suite: every NF's measurements in one run on one machine (ARCHITECTURE.md §6).

    from nf.bench import run_suite
    res = run_suite(quick=False, only=None)   # -> Results (rows, series, machine, errors)
    write_report(res, "benchmarks")           # RESULTS.md (+ PNG plots when matplotlib is there)

CLI: `nf bench [--quick] [--only NF]`, `nf replay PCAP --iface IF [--netns NS] [--pps R] [--count N]`.
"""
from nf.bench.suite import NFS, Results, Row, machine_info, run_suite
from nf.bench.report import markdown, plots, write_report

__all__ = ["NFS", "Results", "Row", "machine_info", "run_suite", "markdown", "plots", "write_report"]
