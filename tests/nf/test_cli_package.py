"""The CLI's install-facing lines (tier 1): `nf example`, and what `nf check` says about where the
BPF objects come from and how to get the module. tests/test_package.py runs them from a wheel."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from nf import cli, data, kmod
from nf.bpf import build
from nf.cli import app

ROOT = Path(__file__).resolve().parents[2]


def nf(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_example_lists_and_prints_every_config_byte_for_byte():
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert data.examples() == {p.stem: p for p in configs}
    r = nf("example")
    assert r.exit_code == 0
    assert [line.split()[0] for line in r.output.splitlines()] == [p.stem for p in configs]
    assert "L2 learning switch" in r.output
    for p in configs:
        r = nf("example", p.stem)
        assert r.exit_code == 0 and r.output == p.read_text()


def test_example_unknown_name_lists_the_known_ones():
    r = nf("example", "teleporter")
    assert r.exit_code == cli.E_NOT_FOUND
    assert "no example 'teleporter' (there are: chain, chain_full, filter" in r.output


def test_check_says_where_the_objects_come_from(monkeypatch):
    build.build_all()
    r = nf("check", "--no-probe", "--json")
    assert r.exit_code in (0, cli.E_UNSUPPORTED), r.output
    o = json.loads(r.output)["bpf_objects"]
    assert o == build.origin() and o["from"] == "source" and o["stale"] == 0
    line = cli._objects_line(o)
    assert line == (f"built from source {build.SRC} into {build.OUT} by {o['clang']}: "
                    f"{o['objects']} objects, build {o['build_hash']}")
    assert "(1 not built yet, 2 stale: built when used)" in cli._objects_line({**o, "missing": 1, "stale": 2})
    pkg = {"from": "package", "dir": "/x/nf/_data/bpf", "objects": 38, "build_hash": "ab12",
           "verified": True, "differ": [], "clang": "Debian clang version 19.1.7", "version": "0.1.0"}
    assert cli._objects_line(pkg) == ("package data /x/nf/_data/bpf: 38 objects, build ab12 "
                                      "(verified; xdp-nf 0.1.0, Debian clang version 19.1.7)")
    assert "(MODIFIED: a.o, b.o differ from BUILD.json;" in \
        cli._objects_line({**pkg, "verified": False, "differ": ["a.o", "b.o"]})
    assert cli._objects_line({"from": None}).startswith("NONE")


def test_check_tells_how_to_get_the_module_in_one_line(monkeypatch):
    monkeypatch.setattr(kmod, "is_loaded", lambda: False)
    monkeypatch.setattr(kmod, "install_hint", lambda: "get it: sudo make -C /r/kmod dkms-install (needs x)")
    r = nf("check", "--no-probe")
    lines = r.output.splitlines()
    assert "enetstl module: get it: sudo make -C /r/kmod dkms-install (needs x)" in lines
    assert json.loads(nf("check", "--no-probe", "--json").output)["module"] == {
        "loaded": False, "install": "get it: sudo make -C /r/kmod dkms-install (needs x)"}


def test_check_shows_the_loaded_modules_version():
    from nf import __version__
    assert cli._module_line({"loaded": True, "version": __version__}) == f"loaded (version {__version__})"
    assert "this xdp-nf is" in cli._module_line({"loaded": True, "version": "0.0.1"})
    assert cli._module_line({"loaded": False}) == "not loaded (pure-eBPF variants only)"
