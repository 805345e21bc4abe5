"""Fixtures for the nf.bpf tests: ctypes mirrors of xdp_progs/tests/*.h-less test programs and a
throwaway netns with one veth pair (the full lab lives in nf/net/)."""
from __future__ import annotations

import ctypes
import os
import types
import uuid

import pytest


class Cfg(ctypes.Structure):
    """struct cfg of xdp_progs/tests/rodata_verdict.bpf.c"""
    _fields_ = [("verdict", ctypes.c_uint32), ("swap_macs", ctypes.c_uint8),
                ("mark", ctypes.c_uint8), ("pad", ctypes.c_uint16)]


class Counters(ctypes.Structure):
    _fields_ = [("packets", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class FlowKey(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint32), ("port", ctypes.c_uint16), ("proto", ctypes.c_uint8),
                ("pad", ctypes.c_uint8)]


@pytest.fixture
def mirrors():
    return types.SimpleNamespace(Cfg=Cfg, Counters=Counters, FlowKey=FlowKey)


# A 60-byte Ethernet frame with distinct bytes everywhere: any rewrite shows.
FRAME = bytes(range(1, 61))


@pytest.fixture
def frame():
    return FRAME


@pytest.fixture
def bpffs_dir():
    """A private instance directory under /sys/fs/bpf/xdp-nf/, removed afterwards."""
    from nf.bpf import pin
    name = f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    d = pin.instance_dir(name)
    yield d
    pin.remove_instance(name)


@pytest.fixture
def veth_netns():
    """A throwaway netns holding veth pair a<->b (both up, IPv6 off); the test runs inside it
    (this thread's netns is switched in-process and restored afterwards)."""
    from pyroute2 import IPRoute, netns

    name = f"nfbpf-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    netns.pushns(name)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname="va", kind="veth", peer="vb")
            for ifn in ("va", "vb", "lo"):
                idx = ipr.link_lookup(ifname=ifn)[0]
                ipr.link("set", index=idx, state="up")
            with open("/proc/sys/net/ipv6/conf/all/disable_ipv6", "w") as f:
                f.write("1")
            ns = types.SimpleNamespace(
                name=name, va=ipr.link_lookup(ifname="va")[0], vb=ipr.link_lookup(ifname="vb")[0],
                lo=ipr.link_lookup(ifname="lo")[0])
        yield ns
    finally:
        netns.popns()
        netns.remove(name)
