"""The terminal side shared by `nf` and the commands it hosts (demo, bench): the two consoles,
progress output only for a person watching, and the documented exit codes."""
from __future__ import annotations

import contextlib
import os

from rich.console import Console

# Exit codes (documented in `nf --help`; tests assert them).
OK = 0
E_FAILED = 1          # unexpected failure (a bug, or an error with no better class)
E_USAGE = 2           # bad command line (typer/click's own code)
E_CONFIG = 3          # invalid config: schema, or the system disagrees (unknown interface, netns)
E_LOAD = 4            # the kernel refused: verifier, load, attach, map update
E_UNSUPPORTED = 5     # this host/build/NF cannot do it: no bpffs, not root, kind not deployable
E_NOT_FOUND = 6       # no such deployment / file / kind
E_CONFLICT = 7        # state conflict: deployed with another config, interface in use, busy
E_CHECK = 8           # a check failed (demo counters differ from what was sent)

def _width(fd: int) -> int | None:
    """None (the terminal's width, or $COLUMNS) on a terminal; else wide enough that no table is
    cut or squeezed into rich's default 80 columns (a pipe, a log, `| grep`)."""
    try:
        tty = os.isatty(fd)
    except (OSError, ValueError):
        tty = False
    return None if tty or os.environ.get("COLUMNS") else 4096


out = Console(highlight=False, soft_wrap=True, width=_width(1))
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_width(2))
QUIET = False         # --quiet: no progress output (there is none anyway when stdout is no terminal)


class Fail(Exception):
    """An error with its exit code (and an optional detail block, e.g. a verifier excerpt)."""

    def __init__(self, code: int, msg: str, detail: str | None = None):
        super().__init__(msg)
        self.code, self.msg, self.detail = code, msg, detail


def live() -> bool:
    """Progress output only for a person watching: stdout and stderr terminals, no --quiet."""
    return not QUIET and out.is_terminal and err.is_terminal and not os.environ.get("NF_QUIET")


@contextlib.contextmanager
def progress_bar(what: str, total: int | None = None):
    """Yields ``say(step, total, description)``: a transient bar on stderr (steps done, time)
    when live(), else a no-op, so logs and pipes get only the result lines."""
    if not live():
        yield lambda *a: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as pg:
        task = pg.add_task(what, total=total)

        def say(step, total, desc=None):
            pg.update(task, completed=step, total=total, **({"description": desc} if desc else {}))
        yield say


@contextlib.contextmanager
def spinner(text: str):
    """A spinner for one step of unknown length, under the same rule as progress_bar."""
    if not live():
        yield
        return
    with err.status(text):
        yield
