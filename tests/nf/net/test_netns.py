"""nf/net/netns.py: in-process named netns, per-thread enter/restore."""
import os
import threading

import pytest
from pyroute2 import IPRoute

from nf.net import netns

pytestmark = pytest.mark.netns


@pytest.fixture
def ns_name():
    name = f"nftest{os.getpid()}x{threading.get_ident() % 100000}"
    yield name
    netns.remove(name)


def test_create_enter_restore(ns_name):
    outer = netns.current_inode()
    netns.create(ns_name)
    assert ns_name in netns.list_netns()
    assert netns.current_inode() == outer  # creating does not move the caller
    with netns.enter(ns_name):
        inner = netns.current_inode()
        assert inner != outer
        with IPRoute() as ipr:  # a netlink socket made inside sees only the new netns
            assert [l.get("ifname") for l in ipr.get_links()] == ["lo"]
    assert netns.current_inode() == outer
    with netns.enter(ns_name):
        assert netns.current_inode() == inner


def test_restored_after_exception(ns_name):
    outer = netns.current_inode()
    netns.create(ns_name)
    with pytest.raises(RuntimeError, match="boom"):
        with netns.enter(ns_name):
            raise RuntimeError("boom")
    assert netns.current_inode() == outer


def test_enter_moves_only_calling_thread(ns_name):
    netns.create(ns_name)
    outer = netns.current_inode()
    seen = {}
    inside, release = threading.Event(), threading.Event()

    def other():
        inside.wait(5)
        seen["other"] = netns.current_inode()
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with netns.enter(ns_name):
        seen["me"] = netns.current_inode()
        inside.set()
        assert release.wait(5)
    t.join(5)
    assert seen["other"] == outer and seen["me"] != outer


def test_errors(ns_name):
    with pytest.raises(netns.NetnsError, match="does not exist"):
        with netns.enter("nf-definitely-missing-ns"):
            pass
    with pytest.raises(netns.NetnsError, match="invalid netns name"):
        netns.create("a/b")
    netns.create(ns_name)
    with pytest.raises(netns.NetnsError, match="already exists"):
        netns.create(ns_name)
    assert netns.remove(ns_name) is True
    assert netns.remove(ns_name) is False
    with pytest.raises(netns.NetnsError):
        netns.remove(ns_name, missing_ok=False)
