"""Progress output of nf/console.py (progress_bar, spinner) and `nf bench` (nf/bench/cli.py): a bar
on stderr only when a person watches (stdout and stderr terminals, no --quiet); pipes, CI logs
and --quiet get the result lines alone."""
from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from rich.console import Console

from nf import console

ROOT = Path(__file__).resolve().parents[2]
NF = str(ROOT / ".venv" / "bin" / "nf")


def _consoles(monkeypatch, terminal: bool, quiet: bool):
    o, e = io.StringIO(), io.StringIO()
    monkeypatch.setattr(console, "out", Console(file=o, force_terminal=terminal, width=100))
    monkeypatch.setattr(console, "err", Console(file=e, force_terminal=terminal, width=100))
    monkeypatch.setattr(console, "QUIET", quiet)
    monkeypatch.delenv("NF_QUIET", raising=False)
    return o, e


@pytest.mark.parametrize("terminal,quiet,shown", [(True, False, True), (True, True, False),
                                                  (False, False, False)])
def test_progress_bar_only_for_a_terminal_without_quiet(monkeypatch, terminal, quiet, shown):
    o, e = _consoles(monkeypatch, terminal, quiet)
    seen = []
    with console.progress_bar("routes", total=3) as say:
        for i in range(3):
            say(i, 3, f"stage {i} of the load")
            seen.append(i)
            time.sleep(0.12)                    # rich refreshes 10 times a second
        say(3, 3, "flipped")
    with console.spinner("loading the new program"):
        time.sleep(0.15)
    assert seen == [0, 1, 2]                     # the work runs either way
    text = e.getvalue()
    assert ("stage 1 of the load" in text) is shown, text
    assert ("loading the new program" in text) is shown, text
    assert ("1/3" in text) is shown               # steps done / total
    assert o.getvalue() == ""                     # never on stdout: results stay parseable


def _in_pty(args: list[str], timeout: float = 120) -> tuple[int, str]:
    """Run nf with stdout and stderr on a pseudo-terminal; (exit code, everything written)."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("CI", None)
    p = subprocess.Popen([NF, *args], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    buf, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:                      # EIO: the child closed the terminal
                break
            if not chunk:
                break
            buf += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    return p.wait(timeout), buf.decode(errors="replace")


def test_bench_shows_a_bar_on_a_terminal_only(tmp_path):
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "needs root (BPF test_run)")
    args = ["bench", "--quick", "--only", "l2_switch", "--no-plots", "--out", str(tmp_path)]
    rc, tty = _in_pty(args)
    assert rc == 0, tty
    assert "bench: running" in tty and "\x1b[" in tty, tty[-2000:]
    rc, quiet = _in_pty(["--quiet", *args])
    assert rc == 0 and "bench: running" not in quiet, quiet[-2000:]
    assert "wrote " in quiet                      # the result lines are still there
    p = subprocess.run([NF, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    assert "bench: running" not in p.stdout + p.stderr
    assert "\x1b[" not in p.stdout + p.stderr     # no control sequences in a pipe or CI log
    # stdout is the results table alone, as written to the report; stderr the two file lines
    assert p.stdout.strip() == (tmp_path / "RESULTS-quick.md").read_text().strip()
    assert p.stderr.splitlines() == [f"wrote {tmp_path}/RESULTS-quick.md and {tmp_path}/results-quick.json",
                                     "plots not requested"]


def test_tables_are_not_cut_in_a_pipe():
    """Issue 17 item 12: piped (`nf show | cat`), a table is as wide as its cells, not rich's
    default 80 columns; $COLUMNS still wins, a terminal keeps its width."""
    import subprocess
    import sys
    code = ("from rich.table import Table\nfrom nf.console import out\nt = Table()\n"
            "t.add_column('a')\nt.add_column('b')\nt.add_row('x' * 70, 'y' * 70)\nout.print(t)\n")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "x" * 70 + " │ " + "y" * 70 in p.stdout
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**env, "COLUMNS": "60"})
    assert max(map(len, p.stdout.splitlines())) <= 60
