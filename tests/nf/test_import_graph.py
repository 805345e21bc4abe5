"""The import graph of nf/: dependencies point one way (no module imports, at any depth or from
inside a function, a module that imports it), and a CLI command whose module fails to import
fails loudly instead of vanishing."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NF = ROOT / "nf"


def modules() -> dict[str, Path]:
    out = {}
    for p in NF.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def graph() -> dict[str, set[str]]:
    """module -> the nf modules it imports (module level or in a function; ``from nf.x import y``
    counts as nf.x.y when that is a module, else as nf.x)."""
    mods = modules()

    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Import):
                targets = [owner(a.name) for a in node.names if a.name.split(".")[0] == "nf"]
            elif isinstance(node, ast.ImportFrom) and not node.level and \
                    (node.module or "").split(".")[0] == "nf":
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods
                           else owner(node.module) for a in node.names]
            else:
                continue
            edges[m] |= {t for t in targets if t and t != m}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_nf_has_no_import_cycle():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    g = graph()
    assert "nf.engine" in g["nf.cli"] and "nf.nfs.kind" in g["nf.nfs.sketch"]   # function-level too


def test_no_nf_module_imports_the_cli():
    """The CLI is an edge: the demo, the bench and the engine never reach into it."""
    assert [m for m, ts in graph().items() if "nf.cli" in ts] == []


def test_a_command_whose_module_fails_to_import_fails_loudly():
    code = ("import sys; sys.modules['nf.bench.cli'] = None\n"   # the next import of it raises
            "from typer.testing import CliRunner\n"
            "from nf.cli import app\n"
            "r = CliRunner().invoke(app, ['bench', '--quick'])\n"
            "print(r.exit_code); print(r.output)\n"
            "print(CliRunner().invoke(app, ['kinds']).exit_code)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "1", p.stdout
    assert "`nf bench` is unavailable: its module failed to import (ModuleNotFoundError" in p.stdout
    assert lines[-1] == "0"                       # every other command still works
