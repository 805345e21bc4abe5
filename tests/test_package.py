"""The installed package, not the checkout (pyproject.toml, setup.py, MANIFEST.in, nf/data.py).

Builds the sdist and, from it, the wheel (as `python -m build` does: clang runs in the unpacked
sdist), installs the wheel into a fresh venv in a temporary directory outside the repository, and
runs that venv's `nf` from there with a clang on PATH that fails the test if anything calls it:
`nf check` (objects from the package data, the same build hash as this checkout's build),
`nf example` + `nf validate` of every example, `nf up` / `nf show` / `nf down` of a switch on a
throwaway netns lab with frames through it, `nf demo`, `nf test` of the shipped case files and the
sample user project (examples/user-project) with the venv's pytest. Netns tier (root); 25-55 s
here, most of it the two builds and pip (dependencies from pip's cache or the index, no compile
step), plus ~20 s for the user project and the case files.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from nf import __version__
from nf.bpf import build as bpf_build

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
CASES = sorted((ROOT / "configs" / "cases").glob("*.yaml"))      # `nf test` examples


def _run(argv, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kw)
    assert p.returncode == 0, f"{argv}: rc {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


class Installed:
    """A venv with the wheel installed, outside the repository; nf() runs its `nf` there."""

    def __init__(self, top: Path, wheel: Path, sdist: Path):
        self.top, self.wheel, self.sdist = top, wheel, sdist
        self.venv = top / "venv"
        self.work = top / "work"          # cwd of every command: not the repository
        self.work.mkdir()
        fake = top / "noclang"            # clang must never run for an installed package
        fake.mkdir()
        self.clang_log = top / "clang-called"
        for name in bpf_build.CLANG_CANDIDATES:
            f = fake / name
            f.write_text(f"#!/bin/sh\necho \"$0 $*\" >> {self.clang_log}\nexit 99\n")
            f.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["PATH"] = f"{self.venv / 'bin'}:{fake}:/usr/sbin:/usr/bin:/sbin:/bin"
        env.pop("NF_BUILD_DIR", None)
        env["COLUMNS"] = "400"            # rich tables: no wrapped cells
        self.env = env

    def nf(self, *args, check: bool = True) -> subprocess.CompletedProcess:
        argv = [self.venv / "bin" / "nf", *args]
        if check:
            return _run(argv, cwd=self.work, env=self.env)
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300,
                              cwd=self.work, env=self.env)

    def py(self, code: str) -> str:
        return _run([self.venv / "bin" / "python", "-c", code], cwd=self.work, env=self.env).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    top = tmp_path_factory.mktemp("installed")
    assert not top.resolve().is_relative_to(ROOT)
    dist = top / "dist"
    # sdist, then the wheel from the unpacked sdist; no isolation: the dev venv has setuptools
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, ROOT])
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    inst = Installed(top, wheel, sdist)
    base = Path(sys.base_prefix) / "bin" / "python3"        # the interpreter the dev venv is on
    _run([base, "-m", "venv", "--without-pip", inst.venv])
    _run([sys.executable, "-m", "pip", "--python", inst.venv / "bin" / "python", "install", "-q",
          "--no-compile", "--disable-pip-version-check", wheel])
    yield inst
    shutil.rmtree(inst.venv)            # ~100 MB of dependencies; pytest keeps its last tmp dirs


def test_sdist_carries_the_sources_the_wheel_is_built_from(installed):
    with tarfile.open(installed.sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    top = f"xdp_nf-{__version__}"
    assert installed.sdist.name == f"{top}.tar.gz"
    sources = {p.relative_to(ROOT).as_posix() for p in bpf_build.sources()}
    assert sources <= names, sorted(sources - names)
    assert {"setup.py", "pyproject.toml", "MANIFEST.in", "kmod/dkms.conf", "kmod/Makefile",
            "kmod/Kbuild", "kmod/include/enetstl.h", "xdp_progs/include/parse.h"} <= names
    assert {p.relative_to(ROOT).as_posix() for p in CONFIGS + CASES} <= names
    assert {"examples/user-project/pytest.ini", "examples/user-project/tests/test_router.py"} <= names
    # nothing built: no objects, no module, no kbuild droppings
    assert not [n for n in names if n.endswith((".o", ".ko", ".mod.c", ".cmd", ".d", ".flags"))]


def test_wheel_carries_objects_examples_and_the_dkms_tree(installed):
    with zipfile.ZipFile(installed.wheel) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read("nf/_data/bpf/BUILD.json"))
        dkms_conf = z.read("nf/_data/kmod/dkms.conf").decode()
        shipped = {n: z.read(n) for n in names if n.startswith("nf/_data/configs/")}
    assert installed.wheel.name == f"xdp_nf-{__version__}-py3-none-any.whl"
    objs = {n.removeprefix("nf/_data/bpf/") for n in names if n.startswith("nf/_data/bpf/") and n.endswith(".o")}
    want = {bpf_build.object_path(s).relative_to(bpf_build.OUT).as_posix() for s in bpf_build.sources()}
    assert objs == want == set(manifest["objects"])
    assert manifest["version"] == __version__ and manifest["build_hash"] == bpf_build.build_hash(manifest["objects"])
    assert "clang version 19" in manifest["clang"]
    assert {f"nf/_data/{p.relative_to(ROOT).as_posix()}": p.read_bytes() for p in CONFIGS + CASES} == shipped
    assert f'PACKAGE_VERSION="{__version__}"' in dkms_conf and 'AUTOINSTALL="yes"' in dkms_conf
    assert {f"nf/_data/kmod/{f}" for f in ("Makefile", "Kbuild", "main.c", "hash_simd.c",
                                          "include/enetstl.h")} <= names
    assert not [n for n in names if n.startswith("xdp_progs/") or n.endswith((".ko", ".bpf.c"))]


def test_check_reports_package_objects_with_the_checkouts_build_hash(installed):
    where = installed.py("import nf, nf.data; print(nf.__file__, nf.data.checkout())").split()
    assert Path(where[0]).is_relative_to(installed.venv) and where[1] == "None"
    rep = json.loads(installed.nf("check", "--json").stdout)
    o = rep["bpf_objects"]
    assert o["from"] == "package" and Path(o["dir"]).is_relative_to(installed.venv)
    assert o["verified"] and o["differ"] == [] and o["version"] == __version__
    bpf_build.build_all()                       # this checkout, same sources, same clang
    assert o["build_hash"] == bpf_build.origin()["build_hash"]
    assert "probe_error" not in rep             # the probe loaded base/base.o from the package
    if os.path.exists("/proc/modules"):
        assert rep["module"]["loaded"] or \
            f"sudo {installed.venv}/bin/python -m nf.kmod dkms-install" in rep["module"]["install"]
    else:
        assert "CONFIG_MODULES off" in rep["module"]["install"]
    text = installed.nf("check", "--no-probe").stdout
    assert f"package data {o['dir']}: {o['objects']} objects, build {o['build_hash']} (verified" in text
    assert not installed.clang_log.exists(), installed.clang_log.read_text()


def test_every_example_prints_and_validates(installed):
    listed = installed.nf("example").stdout.split("\n")
    assert [line.split()[0] for line in listed if line] == [p.stem for p in CONFIGS]
    files = []
    for p in CONFIGS:
        text = installed.nf("example", p.stem).stdout
        assert text == p.read_text()
        f = installed.work / p.name
        f.write_text(text)
        files.append(f)
    r = installed.nf("validate", *files)
    assert [line.split(": ")[1].split()[0] for line in r.stdout.splitlines()] == ["valid"] * len(files)
    bad = installed.nf("example", "nosuch", check=False)
    assert bad.returncode == 6 and "there are: chain" in bad.stderr


def test_up_show_down_a_switch_from_the_installed_package(installed, make_lab):
    from nf.bpf import xdp_query
    from nf.net.lab import LabSpec

    lab = make_lab(LabSpec.switch(2))
    name = f"pkg{os.getpid()}"
    cfg = yaml.safe_load(installed.nf("example", "l2_switch").stdout)
    cfg.update(name=name, netns=lab.dut, static_entries=[],
               ports=[{"name": "p1", "vlan": 10}, {"name": "p2", "vlan": 10}])
    f = installed.work / "l2_switch_pkg.yaml"
    f.write_text(yaml.safe_dump(cfg))
    try:
        r = installed.nf("up", f)
        assert f"{name}: up (l2_switch, p1, p2)" in r.stdout
        show = [d for d in json.loads(installed.nf("show", "--json").stdout) if d["name"] == name]
        assert len(show) == 1 and show[0]["status"] == "up" and show[0]["source"] == str(f)
        with lab.enter("dut"):
            ids = {p: xdp_query(p).prog_id for p in ("p1", "p2")}
        assert all(ids.values())
        assert show[0]["xdp"] == {p: f"native #{i}" for p, i in ids.items()}
        h1, h2 = lab.host("h1").mac, lab.host("h2").mac
        frames = [bytes.fromhex(h2.replace(":", "") + h1.replace(":", "")) + b"\x88\xb5"
                  + f"pkg {i}".encode().ljust(46, b".") for i in range(5)]
        with lab.capture(["h2"]) as cap:
            lab.send("h1", frames)
            got = cap.wait(count=5, timeout=2)[lab.tap("h2")]
        assert sorted(got) == sorted(frames)     # flooded (h2 unknown yet), bytes unchanged
        stats = json.loads(installed.nf("stats", name, "--json").stdout)[name]
        assert stats["ports"]["p1"]["rx_packets"] == 5
        r = installed.nf("down", name)
        assert f"{name}: down" in r.stdout
        with lab.enter("dut"):
            assert [xdp_query(p).attached for p in ("p1", "p2")] == [False, False]
        assert not [d for d in json.loads(installed.nf("show", "--json").stdout) if d["name"] == name]
    finally:
        installed.nf("down", name, check=False)
    assert not installed.clang_log.exists(), installed.clang_log.read_text()


def test_demo_runs_from_the_installed_package(installed):
    """The README's first command, from the wheel: its lab (the shipped example), the switch, the
    sketch and the router scenes, all checked against the models."""
    r = installed.nf("demo")
    assert r.stdout.rstrip().endswith("demo: PASS")
    assert "PASS: routed frames arrive rewritten byte for byte" in r.stdout
    assert not installed.clang_log.exists(), installed.clang_log.read_text()


def test_nf_test_and_the_pytest_plugin_from_the_installed_package(installed):
    """The shipped `nf test` examples pass where the wheel put them; the sample user project
    (examples/user-project, copied out) passes with the venv's pytest, which finds nf_lab through
    the installed entry point."""
    cases = Path(installed.py("import nf.data; print(nf.data.locate('configs'))").strip()) / "cases"
    assert cases.is_relative_to(installed.venv)
    assert sorted(p.name for p in cases.glob("*.yaml")) == [p.name for p in CASES]
    r = installed.nf("test", *sorted(cases.glob("*.yaml")))
    assert r.stdout.rstrip().splitlines()[-1].startswith("PASS: ")
    _run([sys.executable, "-m", "pip", "--python", installed.venv / "bin" / "python", "install", "-q",
          "--no-compile", "--disable-pip-version-check", "pytest"], cwd=installed.work, env=installed.env)
    project = installed.work / "user-project"
    shutil.copytree(ROOT / "examples" / "user-project", project,
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    r = _run([installed.venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
             cwd=project, env=installed.env)
    assert " passed" in r.stdout and "failed" not in r.stdout and "error" not in r.stdout
    assert not installed.clang_log.exists(), installed.clang_log.read_text()
