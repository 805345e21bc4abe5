"""Running the `nf` command line of this checkout from the CLI test files (tests/nf/test_cli*.py,
test_chain_full.py): one runner, its failure message with the output."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

NF = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "nf")


def run(*args, env: dict | None = None, ok: bool = True, timeout: float = 180):
    """`nf ARGS` with ``env`` added to this process's environment; with ``ok`` it must exit 0."""
    p = subprocess.run([NF, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if ok:
        assert p.returncode == 0, f"nf {' '.join(map(str, args))}: rc {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def js(*args):
    """`nf ARGS --json`, parsed."""
    return json.loads(run(*args, "--json").stdout)
