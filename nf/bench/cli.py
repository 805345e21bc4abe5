"""`nf bench` and `nf replay`, registered on the main CLI by `register(app)` (nf/cli.py)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from nf.bench.suite import NFS

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "benchmarks"


def bench(quick: bool = typer.Option(False, "--quick", help="tiny sizes, host only (no VM, no lab): "
                                     "seconds; writes RESULTS-quick.md"),
          only: Optional[List[str]] = typer.Option(None, "--only", help=f"one NF ({', '.join(NFS)}); "
                                                   "repeat for several"),
          out: Path = typer.Option(DEFAULT_OUT, "--out", help="directory for RESULTS.md, results.json "
                                   "and the PNG plots"),
          no_plots: bool = typer.Option(False, "--no-plots", help="skip the PNG plots"),
          no_vm: bool = typer.Option(False, "--no-vm", help="skip the guest instruction counts"),
          no_lab: bool = typer.Option(False, "--no-lab", help="skip the lab rates"),
          generator: Optional[str] = typer.Option(None, "--generator", help="lab traffic generator: "
                                                  "live | tc (default: the first this kernel "
                                                  "permits; `nf check` lists them)")):
    """Benchmark every NF against its baselines in one run; print and write the results table."""
    from nf.bench.report import markdown, write_report
    from nf.bench.suite import run_suite

    for n in only or ():
        if n not in NFS:
            raise typer.BadParameter(f"unknown NF {n!r}: choose from {', '.join(NFS)}",
                                     param_hint="--only")
    import os

    from nf.bench.suite import SECTIONS
    from nf.console import err, live as _live, progress_bar
    from traffic.labgen import GeneratorUnavailable, pick
    lab = not (no_lab or quick)
    if lab or generator is not None:
        try:                      # before anything is made: a bad name leaves nothing behind
            generator = pick(generator)
        except GeneratorUnavailable as e:
            raise typer.BadParameter(str(e), param_hint="--generator") from None
    sel = set(only or NFS)
    # one step per section that will run (each reports "done" through say), plus the guest counts
    total = sum(1 for kind, nf, _ in SECTIONS if nf in sel and (kind != "lab" or lab)
                and (kind != "lab" or os.geteuid() == 0)) + (0 if no_vm or quick else 1)
    with progress_bar("bench: running", total=total) as bar:
        done = [0]

        def say(s: str) -> None:
            done[0] += 1
            bar(done[0], total, s)
            if _live():
                err.print(s, markup=False)       # above the bar
            else:
                typer.echo(s, err=True)
        res = run_suite(quick=quick, only=only or None, guest=not no_vm, lab=lab, say=say,
                        generator=generator)
    files = write_report(res, out, with_plots=not no_plots)
    typer.echo(markdown(res))
    typer.echo(f"wrote {files['markdown']} and {files['json']}", err=True)
    if files.get("variants"):
        typer.echo("variant table (variant: auto): " + ", ".join(map(str, files["variants"])), err=True)
    pl = files["plots"]
    typer.echo(pl if isinstance(pl, str) else "plots: " + ", ".join(str(p) for p in pl), err=True)
    return 1 if res.errors else 0


def replay(pcap: Path = typer.Argument(..., exists=True, dir_okay=False, help="pcap file to send"),
           iface: str = typer.Option(..., "--iface", "-i", help="interface to send out of"),
           netns: Optional[str] = typer.Option(None, "--netns", help="network namespace of the interface"),
           pps: Optional[float] = typer.Option(None, "--pps", help="frames per second (default: top "
                                               "speed with short pauses)"),
           count: Optional[int] = typer.Option(None, "--count", "-n", help="frames to send (the file "
                                               "is cycled; default: each frame once)")):
    """Replay a pcap out of an interface at a rate (traffic.pcap.replay)."""
    from traffic.pcap import replay as _replay

    r = _replay(str(pcap), iface, netns, pps=pps, count=count)
    typer.echo(str(r))
    return 0


def register(app: typer.Typer, wrap=lambda f: f) -> None:
    """Add the commands to `app`; `wrap` is the CLI's error-handling decorator."""
    app.command("bench")(wrap(bench))
    app.command("replay")(wrap(replay))
