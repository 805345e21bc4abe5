"""nf/bpf/xdp.py: attach modes, query, pinned links across processes, atomic program
replacement, live frames (tier 2: a throwaway netns with one veth pair)."""
from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from nf.bpf import BpfError, BpfObject, Link, XdpAction, XdpMode, xdp_query

pytestmark = pytest.mark.netns
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture
def verdicts():
    with BpfObject.open_built("tests/verdicts") as obj:
        obj.load()
        yield obj


def _counter(mirrors, verdict):
    obj = BpfObject.open_built("tests/rodata_verdict")
    obj.set_rodata("cfg", mirrors.Cfg(verdict=verdict))
    obj.load()
    return obj


def _sent_count(obj, action, mirrors, want, timeout=5.0):
    """Per-CPU counter sum for ``action``, polled until it reaches ``want`` (NAPI is async)."""
    stats = obj.map("stats").typed(ctypes.c_uint32, mirrors.Counters)
    deadline = time.monotonic() + timeout
    while True:
        n = stats.sum(int(action)).packets
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


def _send(ifname: str, frame: bytes, n: int) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((ifname, 0))
        for _ in range(n):
            s.send(frame)


FRAME = bytes.fromhex("ffffffffffff" "020000000001" "88b5") + bytes(46)   # local experimental type


@pytest.mark.parametrize("mode", [XdpMode.GENERIC, XdpMode.NATIVE, XdpMode.AUTO])
def test_mode_is_what_query_reports(veth_netns, verdicts, mode):
    prog = verdicts.program("xdp_pass")
    assert not xdp_query(veth_netns.va).attached
    with prog.attach_xdp(veth_netns.va, mode) as link:
        q = xdp_query("va")
        want = XdpMode.GENERIC if mode is XdpMode.GENERIC else XdpMode.NATIVE  # veth has native
        assert link.mode is want and q.mode is want
        assert q.prog_id == prog.id
        assert q.prog_ids() == {want: prog.id}
        assert link.ifindex == veth_netns.va and link.prog_id == prog.id
    assert not xdp_query(veth_netns.va).attached          # closing the last fd detached it


def test_auto_falls_back_to_generic_and_native_fails_with_hint(veth_netns, verdicts):
    prog = verdicts.program("xdp_pass")
    with pytest.raises(BpfError) as ei:
        prog.attach_xdp("lo", XdpMode.NATIVE)              # lo has no native XDP
    assert ei.value.errno in (errno.EOPNOTSUPP, errno.EINVAL)
    assert "native XDP unsupported on lo: use generic mode" in str(ei.value)
    with prog.attach_xdp("lo", XdpMode.AUTO) as link:
        assert link.mode is XdpMode.GENERIC
        assert xdp_query("lo").mode is XdpMode.GENERIC


def test_second_attach_is_busy_with_hint(veth_netns, verdicts):
    with verdicts.program("xdp_pass").attach_xdp(veth_netns.va, XdpMode.NATIVE):
        with pytest.raises(BpfError) as ei:
            verdicts.program("xdp_drop").attach_xdp(veth_netns.va, XdpMode.NATIVE)
        assert ei.value.errno in (errno.EBUSY, errno.EEXIST)
        assert "va already runs an XDP program" in ei.value.hint and "detach it first" in ei.value.hint


def test_update_program_replaces_atomically(veth_netns, mirrors):
    """Frames sent into va are counted by whichever program is attached: after
    update_program the same link (never detached) runs the other program."""
    passer, dropper = _counter(mirrors, XdpAction.PASS), _counter(mirrors, XdpAction.DROP)
    try:
        a, b = passer.program("xdp_main"), dropper.program("xdp_main")
        # vb's peer va receives what we send on vb
        with a.attach_xdp(veth_netns.va, XdpMode.NATIVE) as link:
            link_id = link.id
            _send("vb", FRAME, 5)
            assert _sent_count(passer, XdpAction.PASS, mirrors, 5) == 5
            link.update_program(b, expected_old=a)
            assert link.id == link_id and xdp_query("va").prog_id == b.id
            _send("vb", FRAME, 7)
            assert _sent_count(dropper, XdpAction.DROP, mirrors, 7) == 7
            assert _sent_count(passer, XdpAction.PASS, mirrors, 5, timeout=0) == 5
            with pytest.raises(BpfError) as ei:       # a is no longer the attached program
                link.update_program(a, expected_old=a)
            assert ei.value.errno == errno.EPERM
    finally:
        passer.close()
        dropper.close()


def test_pinned_link_survives_its_process(veth_netns, bpffs_dir, verdicts):
    pin = bpffs_dir / "link_va"
    child = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from pyroute2 import netns
        netns.setns({veth_netns.name!r})
        from nf.bpf import BpfObject, XdpMode
        with BpfObject.open_built("tests/verdicts") as obj:
            obj.load()
            prog = obj.program("xdp_drop")
            link = prog.attach_xdp("va", XdpMode.GENERIC, pin={str(pin)!r})
            print(prog.id)
        # exits without detaching: only the pin holds the link now
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    prog_id = int(out.stdout.split()[-1])
    q = xdp_query(veth_netns.va)
    assert q.mode is XdpMode.GENERIC and q.skb_prog_id == prog_id and q.drv_prog_id == 0
    link = Link.from_pin(pin)
    assert link.prog_id == prog_id and link.ifindex == veth_netns.va
    assert link.mode is XdpMode.GENERIC
    link.detach()
    assert not pin.exists()
    assert not xdp_query(veth_netns.va).attached


def test_live_frames_tx_reach_the_peer(veth_netns, mirrors):
    """Live frames on va with XDP_TX go out of va into vb, where a native counter sees them
    (the veth rule: the far end needs native XDP or GRO, or redirected frames vanish).
    A kernel that refuses live frames (traffic/labgen.py's probe says so) refuses with EPERM and
    a hint naming the refusal and the generator used instead, and nothing is sent."""
    from traffic.labgen import probe
    tx, counter = _counter(mirrors, XdpAction.TX), _counter(mirrors, XdpAction.PASS)
    try:
        with counter.program("xdp_main").attach_xdp(veth_netns.vb, XdpMode.NATIVE):
            n = 1009
            if not probe("live").ok:
                with pytest.raises(BpfError) as ei:
                    tx.program("xdp_main").test_run_live(FRAME, repeat=n, ifindex="va")
                assert ei.value.errno == errno.EPERM
                assert "refuses BPF_F_TEST_XDP_LIVE_FRAMES" in ei.value.hint
                assert "tc clone-redirect" in ei.value.hint
                assert _sent_count(counter, XdpAction.PASS, mirrors, 1, timeout=0.2) == 0
                return
            r = tx.program("xdp_main").test_run_live(FRAME, repeat=n, ifindex="va",
                                                     batch_size=64)
            assert r.data_out == b""
            assert _sent_count(tx, XdpAction.TX, mirrors, n) == n
            assert _sent_count(counter, XdpAction.PASS, mirrors, n) == n
    finally:
        tx.close()
        counter.close()


def test_no_fd_leak_over_50_attach_detach_cycles(veth_netns, verdicts, bpffs_dir):
    prog = verdicts.program("xdp_pass")

    def cycle(i):
        mode = (XdpMode.NATIVE, XdpMode.GENERIC)[i % 2]
        link = prog.attach_xdp(veth_netns.va, mode, pin=bpffs_dir / "l" if i % 3 == 0 else None)
        assert xdp_query(veth_netns.va).mode is mode
        if i % 3 == 0:
            link.close()
            link = Link.from_pin(bpffs_dir / "l")
        link.detach()
        assert not xdp_query(veth_netns.va).attached
    cycle(0)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(50):
        cycle(i)
    assert len(os.listdir("/proc/self/fd")) == before


def test_detach_legacy_refuses_link_held_program(veth_netns, verdicts):
    from nf.bpf import detach_legacy
    with verdicts.program("xdp_pass").attach_xdp(veth_netns.va, XdpMode.GENERIC):
        with pytest.raises(BpfError) as ei:
            detach_legacy(veth_netns.va, XdpMode.GENERIC)
        assert ei.value.errno == errno.EBUSY and "Link.from_pin" in ei.value.hint
        assert xdp_query(veth_netns.va).mode is XdpMode.GENERIC
    detach_legacy(veth_netns.va)        # nothing attached: a no-op, not an error


def test_from_pin_of_a_link_whose_interface_is_gone(veth_netns, bpffs_dir, verdicts):
    """Deleting the interface leaves the pinned link defunct (xdp_ifindex 0): from_pin still
    opens it (it used to raise ValueError("invalid ifindex 0")), reports it, and detaches it."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        ipr.link("add", ifname="vgone", kind="veth", peer="vgone2")
        idx = ipr.link_lookup(ifname="vgone")[0]
        ipr.link("set", index=idx, state="up")
        pin = bpffs_dir / "link_gone"
        link = verdicts.program("xdp_drop").attach_xdp("vgone", XdpMode.GENERIC, pin=str(pin))
        assert link.ifindex == idx and not link.defunct
        link.close()
        ipr.link("del", index=idx)
    link = Link.from_pin(pin)
    assert link.defunct and link.ifindex == 0 and link.mode is None
    link.detach()
    assert not pin.exists() and link.defunct
