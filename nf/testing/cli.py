"""`nf test CASES.yaml ...`, registered on the main CLI by `register(app)` (nf/cli.py).

Exit codes (the CLI's own): 0 every check passed, 8 a check failed, 3 a bad case file (its
field path named, or the config's), others as for `nf up` (4 the kernel refused, 5 no root ...).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def test(files: List[Path] = typer.Argument(..., help="case file(s): a config to deploy and steps "
                                            "(configs/cases/*.yaml are examples)"),
         junit: Optional[Path] = typer.Option(None, "--junit", help="also write JUnit XML here"),
         verbose: bool = typer.Option(False, "--verbose", "-v", help="a row per check, passed "
                                      "ones too")):
    """Run case files: each on a throwaway netns lab built from its config; a pass/fail table."""
    from rich.table import Table

    from nf.console import E_CHECK, out, progress_bar
    from nf.testing import cases

    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"{f}: no such file")
    loaded = [cases.load(f) for f in files]          # every file valid before any lab is built
    reports = []
    try:
        for c in loaded:
            try:
                with progress_bar(f"{c.path.name}: building the lab", total=len(c.spec.steps)) as bar:
                    rep = cases.run(c, progress=lambda i, n, s: bar(i, n, f"{c.path.name}: {s}"))
            except Exception as e:          # in the JUnit file too, then the CLI's exit code
                reports.append(cases.Report(c.path, c.config, error=f"{type(e).__name__}: {e}"))
                raise
            reports.append(rep)
            t = Table(title=f"{c.path}: {rep.kind} from {c.config} ({rep.seconds:.1f} s)")
            for col in ("#", "step", "check", "result"):
                t.add_column(col, justify="right" if col == "#" else "left")
            for i, s in enumerate(rep.steps, 1):
                rows = [(ch.what, ch.ok) for ch in s.checks if verbose or not ch.ok] \
                    or [(f"{len(s.checks)} check(s)", True)]
                for j, (what, ok) in enumerate(rows):
                    t.add_row(str(i) if j == 0 else "", s.name if j == 0 else "", what,
                              "PASS" if ok else "FAIL")
            out.print(t)
            for i, s in enumerate(rep.steps, 1):
                details = [ch.detail for ch in s.checks if not ch.ok]
                if details:
                    out.print(f"step {i} ({s.name}):\n" + "\n".join(
                        f"  {x}" for d in details for x in d.splitlines()), markup=False)
    finally:
        if junit is not None and reports:
            junit.write_text(cases.junit(reports))
    nsteps = sum(len(r.steps) for r in reports)
    bad = [s for r in reports for s in r.steps if not s.ok]
    checks = sum(len(s.checks) for r in reports for s in r.steps)
    if bad:
        out.print(f"FAIL: {len(bad)} of {nsteps} step(s) failed ({sum(r.failed for r in reports)} "
                  f"of {checks} check(s))", markup=False)
        return E_CHECK
    out.print(f"PASS: {nsteps} step(s), {checks} check(s)", markup=False)
    return 0


def register(app: typer.Typer, wrap=lambda f: f) -> None:
    """Add `nf test` to `app`; `wrap` is the CLI's error-handling decorator."""
    app.command("test")(wrap(test))
