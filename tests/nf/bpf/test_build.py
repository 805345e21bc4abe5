"""nf/bpf/build.py: the stale rule in a source tree, objects that carry no path of the tree they
were built in, and the package-data path an installed wheel takes (BUILD.json, build hash).
tests/test_package.py checks the same through a real wheel."""
from __future__ import annotations

import json
import shutil

import pytest

from nf import __version__, data
from nf.bpf import build as B

TINY = """// SPDX-License-Identifier: GPL-2.0
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "tiny.h"
SEC("xdp")
int xdp_tiny(struct xdp_md *ctx) { return TINY_VERDICT; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A source tree of one program with its own header; objects into tmp_path/out."""
    src = tmp_path / "xdp_progs"
    (src / "t").mkdir(parents=True)
    (src / "t" / "tiny.bpf.c").write_text(TINY)
    (src / "t" / "tiny.h").write_text("#define TINY_VERDICT 2\n")
    monkeypatch.setattr(B, "SRC", src)
    monkeypatch.setattr(B, "OUT", tmp_path / "out")
    return src


def test_rebuilt_when_the_source_a_header_or_the_flags_change(tree, monkeypatch):
    ino = lambda: B.build("t/tiny").stat().st_ino  # noqa: E731  (a rebuild replaces the file)
    obj = B.build("t/tiny")
    assert obj == B.OUT / "t" / "tiny.o" and obj.read_bytes()[:4] == b"\x7fELF"
    first = obj.stat().st_ino
    assert ino() == first                                           # fresh: not rebuilt
    (tree / "t" / "tiny.h").write_text("#define TINY_VERDICT 1\n")  # a header changed
    second = ino()
    assert second != first and ino() == second
    monkeypatch.setattr(B, "CFLAGS", [*B.CFLAGS, "-DNF_TEST_FLAG=1"])   # the flags changed
    assert ino() != second
    with pytest.raises(B.BuildError, match="no BPF source"):
        B.build("t/nosuch")


def test_objects_carry_no_path_of_the_tree_they_were_built_in():
    """-ffile-prefix-map and clang run from the root: a wheel built anywhere has the same bytes
    (its build hash equals the checkout's; tests/test_package.py compares them)."""
    for name in ("l2_switch/l2_switch", "base/base"):
        raw = B.build(name).read_bytes()
        assert str(B.ROOT).encode() not in raw
        assert b"./xdp_progs/include/" in raw               # line info: paths relative to the root


@pytest.fixture
def packaged(tmp_path, monkeypatch):
    """What setup.py writes into a wheel, and build.py looking at it as an installed package does:
    no source tree, nf/_data/bpf found through nf.data.package_data."""
    dest = tmp_path / "_data" / "bpf"
    manifest = B.package(dest, __version__)
    want = {B.object_path(s).relative_to(B.OUT).as_posix() for s in B.sources()}
    monkeypatch.setattr(B, "SRC", tmp_path / "no-source-tree")
    monkeypatch.setattr(data, "package_data", lambda name: dest if name == "bpf" else None)
    return dest, manifest, want


def test_package_data_is_every_object_with_its_manifest(packaged):
    dest, manifest, want = packaged
    assert {p.relative_to(dest).as_posix() for p in dest.rglob("*.o")} == want == set(manifest["objects"])
    assert json.loads((dest / B.MANIFEST).read_text()) == manifest
    assert manifest["version"] == __version__ and "clang version" in manifest["clang"]
    assert not [f for f in manifest["cflags"] if str(B.ROOT) in f]
    assert not list(dest.rglob("*.d")) and not list(dest.rglob("*.flags"))


def test_installed_package_loads_shipped_objects_and_never_clang(packaged, monkeypatch):
    dest, manifest, _ = packaged
    monkeypatch.setattr(B, "clang", lambda: pytest.fail("clang called for an installed package"))
    assert B.build("router/router") == dest / "router" / "router.o"
    with pytest.raises(B.BuildError, match=r"has no BPF object nosuch/x\.o"):
        B.build("nosuch/x")
    o = B.origin()
    assert o == {"from": "package", "dir": str(dest), "objects": len(manifest["objects"]),
                 "build_hash": manifest["build_hash"], "verified": True, "differ": [],
                 "clang": manifest["clang"], "version": __version__}


def test_origin_build_hash_is_the_checkouts_and_catches_a_changed_object(packaged, monkeypatch):
    dest, manifest, _ = packaged
    o = B.origin()
    with monkeypatch.context() as m:                 # the checkout's view of the same objects
        m.setattr(B, "SRC", B.ROOT / "xdp_progs")
        src = B.origin()
    assert src["from"] == "source" and src["missing"] == src["stale"] == 0
    assert o["build_hash"] == src["build_hash"] == B.build_hash(manifest["objects"])
    victim = dest / "sketch" / "sketch.o"
    victim.write_bytes(victim.read_bytes() + b"\0")
    (dest / "extra.o").write_bytes(b"x")
    o = B.origin()
    assert not o["verified"] and o["differ"] == ["extra.o", "sketch/sketch.o"]
    shutil.rmtree(dest)
    dest.mkdir()
    assert B.origin()["verified"] is False          # no BUILD.json: nothing is verified


def test_no_source_tree_and_no_package_data_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(B, "SRC", tmp_path / "none")
    monkeypatch.setattr(data, "package_data", lambda name: None)
    with pytest.raises(B.BuildError, match="reinstall xdp-nf from its wheel"):
        B.build("l2_switch/l2_switch")
    assert B.origin() == {"from": None, "dir": None, "build_hash": None}
