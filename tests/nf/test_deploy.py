"""nf/deploy.py: records pinned in bpffs, atomic replace, stale detection, generic pin cleanup,
the inter-process lock. Tier 1 (root + bpffs, no interfaces)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from nf import deploy
from nf.bpf import pin


@pytest.fixture
def name():
    from nf.testing.tiers import require
    require(os.geteuid() == 0 and pin.bpffs_mount_of(pin.BPFFS) is not None, "needs root and bpffs")
    n = f"deptest{os.getpid()}"
    yield n
    deploy.remove(n)
    deploy.cleanup_pins(n)


def rec(name, **kw) -> deploy.Record:
    d = dict(name=name, kind="l2_switch", source="/x.yaml", config={"a": 1, "ports": ["p1"]},
             netns="ns", interfaces=["p1"])
    d.update(kw)
    return deploy.Record(**d)


def test_record_roundtrip_and_replace(name):
    r = rec(name)
    deploy.write(r)
    assert (deploy.state_root() / name).exists()
    got = deploy.read(name)
    assert got.config == {"a": 1, "ports": ["p1"]} and got.status == "deploying"
    assert got.pid == os.getpid() and got.created > 0 and got.digest == r.digest
    assert name in deploy.names() and name in [x.name for x in deploy.records()]
    # a bigger record replaces it whole (new map, renamed over the pin)
    big = {"routes": [f"10.{i >> 8}.{i & 255}.0/24" for i in range(5000)]}
    deploy.write(rec(name, config=big, status="up", created=got.created))
    again = deploy.read(name)
    assert again.config == big and again.status == "up" and again.created == got.created
    assert [p.name for p in deploy.state_root().iterdir() if name in p.name] == [name]  # no tmp left
    assert deploy.remove(name) and deploy.read(name) is None and not deploy.remove(name)


def test_digest_is_canonical():
    assert deploy.digest({"a": 1, "b": [1, 2]}) == deploy.digest({"b": [1, 2], "a": 1})
    assert deploy.digest({"a": 1}) != deploy.digest({"a": 2})


def test_stale_means_unfinished_and_owner_dead(name):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    r = rec(name, status="deploying")
    deploy.write(r)
    r = deploy.read(name)
    assert not r.stale                      # our own pid is alive
    r.pid = p.pid                           # a finished process
    assert r.stale
    r.status = "up"
    assert not r.stale                      # finished changes are never stale


def test_cleanup_pins_unpins_maps_and_detaches_links(name):
    from nf.bpf import Map
    d = pin.instance_dir(name)
    (d / "links").mkdir()
    m = Map.create("array", 4, 8, 1, name="t")
    m.pin(d / "m1")
    m.pin(d / "links" / "notalink")
    m.close()
    assert deploy.orphans().count(name) == 1
    c = deploy.cleanup_pins(name)
    assert c == {"links": 0, "pins": 2} and not d.exists()
    assert name not in deploy.orphans()
    assert deploy.cleanup_pins(name) == {"links": 0, "pins": 0}


def test_lock_excludes_a_second_process_and_dies_with_it(tmp_path, monkeypatch, name):
    lock = tmp_path / "nf.lock"
    monkeypatch.setattr(deploy, "LOCK_PATH", lock)
    code = ("import sys, time, fcntl, os; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(30)")
    p = subprocess.Popen([sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        with pytest.raises(deploy.StateError, match="another nf process holds"):
            with deploy.locked(timeout=0.3):
                pass
        assert time.monotonic() - t0 >= 0.3
    finally:
        p.kill()
        p.wait()
    with deploy.locked(timeout=2):         # the kernel released the dead holder's lock
        pass


def test_corrupt_record_is_a_clear_error(name):
    from nf.bpf import Map
    deploy.state_root().mkdir(parents=True, exist_ok=True)
    m = Map.create("array", 4, 64, 1, name="bad")
    m.update(b"\0\0\0\0", (10).to_bytes(4, "little") + b"{not json!" + bytes(50))
    m.pin(deploy.state_root() / name)
    m.close()
    with pytest.raises(deploy.StateError, match="corrupt"):
        deploy.read(name)


@pytest.mark.netns
def test_cleanup_pins_detaches_a_pinned_xdp_link(name, lab):
    """The generic teardown a killed process relies on: a pinned link goes, its interface is free."""
    from nf.bpf import BpfObject, XdpMode, xdp_query
    d = pin.instance_dir(name)
    (d / "links").mkdir()
    with BpfObject.open_built("base/base") as obj:
        obj.pin_maps(d)
        obj.load()
        with lab.enter("dut"):
            link = obj.program("xdp_base").attach_xdp(lab.port_ifindex("h1"), XdpMode.NATIVE,
                                                       pin=str(d / "links" / "p1"))
            link.close()
    with lab.enter("dut"):
        assert xdp_query("p1").attached          # held by the pin alone
    c = deploy.cleanup_pins(name)
    assert c["links"] == 1 and c["pins"] >= 2 and not d.exists()
    with lab.enter("dut"):
        assert not xdp_query("p1").attached


@pytest.fixture
def private_bpffs(tmp_path, monkeypatch):
    """A bpffs instance of our own, so a bare `nf down` cannot touch other runs' deployments."""
    mnt = tmp_path / "bpffs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "bpf", "bpf", str(mnt)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a private bpffs: {r.stderr.strip()}")
    monkeypatch.setattr(pin, "BPFFS", mnt)
    monkeypatch.setattr(pin, "ROOT", mnt / "xdp-nf")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.netns
def test_orphans_left_alone_by_bare_down_and_cleaned_by_name_even_when_the_interface_is_gone(
        name, make_lab, private_bpffs):
    """A controller's pins without a record (maybe a live process's) survive `nf down`; named,
    they go, including a link whose interface (and netns) no longer exists."""
    from typer.testing import CliRunner

    from nf.bpf import BpfObject, XdpMode
    from nf.cli import app
    lab = make_lab(2)
    d = pin.instance_dir(name)
    (d / "links").mkdir()
    with BpfObject.open_built("base/base") as obj:
        obj.pin_maps(d)
        obj.load()
        with lab.enter("dut"):
            obj.program("xdp_base").attach_xdp(lab.port_ifindex("h1"), XdpMode.NATIVE,
                                               pin=str(d / "links" / "p1")).close()
    r = CliRunner().invoke(app, ["down", "--all"])
    assert r.exit_code == 0 and "pins without a record left alone: " in r.output and name in r.output
    assert d.exists()
    lab.destroy()                                   # the interface is gone, the pin is not
    r = CliRunner().invoke(app, ["down", name])
    assert r.exit_code == 0, r.output
    assert f"{name}: removed leftover pins (1 links" in r.output and not d.exists()
