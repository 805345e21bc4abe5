"""RESULTS.md and PNG plots from a suite run (nf.bench.suite.Results)."""
from __future__ import annotations

import json
from pathlib import Path

from nf.bench.suite import NFS, Results

PLOTS_HINT = ("plots skipped: matplotlib is not installed "
              "(install the bench extra: .venv/bin/pip install -e '.[bench]')")


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ratio(v: float | None) -> str:
    return "–" if v is None else (f"{v:.2f}×" if v < 10 else f"{v:.0f}×")


def markdown(res: Results) -> str:
    m = res.machine
    mode = "quick (tiny sizes, host only: no VM, no lab)" if res.quick else "full"
    out = ["# Benchmark results", "",
           f"`nf bench`{' --quick' if res.quick else ''} — {mode}, {res.seconds:.0f} s.", "",
           "| machine | |", "|---|---|",
           f"| kernel (`uname -r`) | {m['kernel']} |", f"| CPU | {m['cpu']} |",
           f"| nproc | {m['nproc']} |", f"| load average at start | {m['loadavg']} |",
           f"| date | {m['date']} |", "",
           "Methods (ARCHITECTURE.md §6): **native** = host BPF_PROG_TEST_RUN with repeat, "
           "kernel-reported ns, median of rounds; **guest insns** = guest instructions per packet "
           "beyond the empty XDP program, QEMU TCG plugin, pure and eNetSTL in ONE boot (TCG wall "
           "time is never used to rank); **lab** = an in-kernel generator (named in each row: live "
           "frames, or tc clone-redirect where the kernel refuses live frames) on a veth lab with "
           "two queues per veth, generator, NF and receiver on the sending CPU, counted at the "
           "receiver; an NF's net cost = 1/Mpps - 1/Mpps of the generator alone (its frames "
           "dropped on the dut port), cases interleaved round by round; **wall** = elapsed time. "
           "Absolute numbers drift with the machine's load: compare the ratios.", "",
           "| NF | measurement | method | value | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for nf in NFS:
        for r in (r for r in res.rows if r.nf == nf):
            if r.ratio is None:
                ratio = "–"
            elif r.ratio_is == "seconds":
                ratio = f"{r.ratio:.2f} s"
            else:
                ratio = f"{_ratio(r.ratio)} ({r.ratio_is})"
            met = "–" if r.met is None else ("**yes**" if r.met else "**NO**")
            out.append(f"| {r.nf} | {r.what} | {r.method} | {_fmt(r.value)} {r.unit} | {ratio} | "
                       f"{r.target or '–'} | {met} |")
    tg = [r for r in res.rows if r.met is not None]
    if tg:
        out += ["", f"Targets met: {sum(r.met for r in tg)} of {len(tg)}."]
    if res.notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in res.notes]
    if res.profiles:
        out += ["", "## Where the instructions go (guest, per packet, by function)", ""]
        for k, prof in res.profiles.items():
            top = ", ".join(f"{name.split(' ')[0]} {v:.0f}" for name, v in prof[:8] if abs(v) >= 0.5)
            out.append(f"- **{k}**: {top}")
    if res.errors:
        out += ["", "## Not measured in this run", ""] + [f"- {e}" for e in res.errors]
    pngs = [f"{k}.png" for k in res.series]
    if pngs and not res.quick:
        out += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in pngs)]
    return "\n".join(out) + "\n"


def targets_markdown(res: Results) -> str:
    """The target rows only (for the README): NF, measurement, ratio, target, met."""
    m = res.machine
    out = [f"Targets, `nf bench` on {m['date']} ({m['kernel']}, {m['cpu']}, {m['nproc']} CPUs, "
           f"load average {m['loadavg'].split()[0]} at start):", "",
           "| NF | measurement | method | value | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in sorted(res.rows, key=lambda r: NFS.index(r.nf)):   # stable: run order within an NF
        if r.met is None:
            continue
        ratio = f"{r.ratio:.2f} s" if r.ratio_is == "seconds" else f"{_ratio(r.ratio)} ({r.ratio_is})"
        out.append(f"| {r.nf} | {r.what} | {r.method} | {_fmt(r.value)} {r.unit} | {ratio} | {r.target} | "
                   f"{'yes' if r.met else '**NO**'} |")
    return "\n".join(out) + "\n"


def plots(res: Results, out_dir: Path) -> list[Path] | str:
    """One PNG per series (scaling plots). Returns the files, or a message when matplotlib is
    missing (plots are optional: the default test install stays lean)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return PLOTS_HINT
    files = []
    for name, s in res.series.items():
        if not s["series"]:
            continue
        # native time and guest instructions are different units: one panel each
        groups = [("ns", {k: v for k, v in s["series"].items() if "insns" not in k}),
                  ("guest instructions / packet", {k: v for k, v in s["series"].items() if "insns" in k})]
        groups = [(unit, g) for unit, g in groups if g]
        fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False)
        for ax, (unit, g) in zip(axes[0], groups):
            for label, ys in g.items():
                ax.plot(s["x"][:len(ys)], ys, marker="o", label=label)
            if s.get("logx"):
                ax.set_xscale("log")
            ax.set_xlabel(s["xlabel"])
            ax.set_ylabel(s["ylabel"] if unit == "ns" and s["ylabel"].startswith("ns") else unit)
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=7, loc="best")
            ax.grid(alpha=0.3)
        fig.suptitle(f"{name.replace('_', ' ')} — {res.machine['kernel']}, {res.machine['date']}",
                     fontsize=9)
        fig.tight_layout()
        p = out_dir / f"{name}{'-quick' if res.quick else ''}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        files.append(p)
    return files


def load_results(path: str | Path) -> Results:
    """A Results back from the results.json a run wrote (to re-render its table and plots)."""
    import json
    from nf.bench.suite import Row
    d = json.loads(Path(path).read_text())
    rows = [Row(**r) for r in d.pop("rows")]
    return Results(rows=rows, **d)


def write_report(res: Results, out_dir: str | Path = "benchmarks", with_plots: bool = True) -> dict:
    """Write RESULTS.md (RESULTS-quick.md for a quick run, so it never overwrites the committed
    full results), results.json and the plots. Returns {"markdown": path, "json": path,
    "plots": [paths] or a message}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if res.quick else ""
    md = out_dir / f"RESULTS{suffix}.md"
    md.write_text(markdown(res))
    js = out_dir / f"results{suffix}.json"
    js.write_text(res.to_json() + "\n")
    pl = plots(res, out_dir) if with_plots else "plots not requested"
    files = {"markdown": md, "json": js, "plots": pl}
    if res.variants:
        files["variants"] = write_variants(res.variants, out_dir)
    return files


VARIANTS_METHOD = ("guest instructions per packet of the pure-eBPF and eNetSTL variants, counted "
                   "in one QEMU TCG boot with the module loaded (ARCHITECTURE.md §6); auto picks "
                   "eNetSTL where its cell is strictly cheaper")


def write_variants(nfs: dict, out_dir: Path) -> list[Path]:
    """The variant table (nf/variants.py) with the measured NFs replaced: variants.json beside
    the results, and the copy the package ships (nf/variants.json) when the results go to the
    checkout's benchmarks/ (a run elsewhere leaves the shipped table alone)."""
    from nf import variants
    out = []
    for path in [out_dir / "variants.json"] + \
            ([variants.TABLE] if out_dir.resolve() == variants.TABLE.parents[1] / "benchmarks" else []):
        old = variants.load_table(path) if path.exists() else variants.load_table()
        path.write_text(json.dumps(variants.merge(old, nfs, VARIANTS_METHOD), indent=1) + "\n")
        out.append(path)
    return out
