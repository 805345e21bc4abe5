"""nf/nfs/router.py: the controller rejects bad routes before loading (route file line numbers),
sizes tables from the config, publishes through bank flips, and mirrors router.h exactly."""
from __future__ import annotations

import os

import pytest

from nf.bpf.build import build
from nf.bpf.layout import check_layout
from nf.config.router import validate_router_config
from nf.nfs.router import MIRRORS, Router
from nf.routes import RouteError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF needs root")


def cfg(**kw):
    d = {"interfaces": [{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.0.0.1/24", "2001:db8::1/64"]},
                        {"name": "p1", "ifindex": 1001, "mac": "02:00:00:00:00:02",
                         "addresses": ["10.0.1.1/24"]}],
         "groups": [{"name": "g", "via": ["10.0.1.2", "10.0.0.2"]}],
         "sizes": {"v4_chunks": 4, "v6_chunks": 64, "trie_entries": 64, "neighbours": 64}}
    d.update(kw)
    return validate_router_config(d)


@pytest.mark.parametrize("mirror", MIRRORS, ids=lambda m: m.__name__)
def test_mirrors_match_btf(mirror):
    check_layout(mirror, str(build("router/router")))


def test_route_file_error_before_load(tmp_path):
    f = tmp_path / "routes.txt"
    f.write_text("# ok\n10.5.0.0/16 via 10.0.1.2\n10.6.0.0/16 via 10.9.9.9\n")
    with pytest.raises(RouteError, match=r"routes.txt:3: next hop 10.9.9.9 is on no connected subnet"):
        Router(cfg(route_file=str(f)))
    f.write_text("10.5.0.0/16 via 10.0.1.2\n10.5.0.0/16 group g\n")
    with pytest.raises(RouteError, match=r":2: duplicate route 10.5.0.0/16 \(first on line 1\)"):
        Router(cfg(route_file=str(f)))
    f.write_text("10.5.0.0/16 via 10.0.1.2\n10.7.0.0/16 group nope\n")
    with pytest.raises(RouteError, match=r":2: unknown group 'nope'"):
        Router(cfg(route_file=str(f)))
    f.write_text("10.5.0.0/16 sideways 10.0.1.2\n")
    with pytest.raises(RouteError, match=r":1: cannot parse target"):
        Router(cfg(route_file=str(f)))


def test_targets_share_groups_and_classes():
    r = Router(cfg(routes=[{"prefix": "0.0.0.0/0", "group": "g"}]))
    a = r.resolve_target("via 10.0.1.2")
    assert r.resolve_target("via 10.0.1.2") == a
    g = r.group(r.resolve_target("group g"))
    assert (g.kind, g.count, g.cls) == (1, 2, 3)
    assert [g.hops[i].port for i in range(2)] == [1, 0]
    assert bytes(g.hops[0].gw)[:4] == bytes([10, 0, 1, 2])
    with pytest.raises(ValueError, match="mix IPv4 and IPv6"):
        r.resolve_target("via 10.0.1.2 via 2001:db8::2")


@needs_root
def test_tables_too_small_is_a_clear_error():
    with Router(cfg(), tx_ifindex=1) as r:
        r.load()
        # 6 /25s + the two local /32s (10.0.0.1, 10.0.1.1) need 8 chunks
        lines = [f"10.{i}.{j}.128/25 via 10.0.1.2" for i in range(20, 22) for j in range(3)]
        from nf.routes import parse_route_lines
        with pytest.raises(RouteError, match="needs 8 chunks.*v4_chunks is 4"):
            r.replace_routes(parse_route_lines(lines, r._resolver()))
        assert r.lookup(["10.20.0.200"]) == [0]       # the failed replace left traffic alone


@needs_root
def test_replace_from_file_and_sizes(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("10.5.0.0/16 via 10.0.1.2\n2001:db8:5::/48 via 2001:db8::2\n")
    with Router(cfg(), tx_ifindex=1) as r:
        r.load()
        assert r.obj.map("rt_v4_tbl8").max_entries == 4 * 256   # u64 pairs: 2 banks x 4 chunks
        assert r.obj.map("rt_trie4_0").max_entries == 1          # trie unused in dir mode
        r.replace_routes(f)
        assert r.lookup(["10.5.1.1", "2001:db8:5::1"]) == [r.resolve_target("via 10.0.1.2"),
                                                           r.resolve_target("via 2001:db8::2")]


@needs_root
@pytest.mark.parametrize("mode", ["trie", "fib"])
def test_other_modes_load_small(mode):
    with Router(cfg(mode=mode), tx_ifindex=1) as r:
        r.load()
        assert r.obj.map("rt_v4_tbl24").max_entries == 1
        assert r.obj.map("rt_trie4_0").max_entries == (64 if mode == "trie" else 1)
        if mode == "trie":
            assert r.lookup(["10.0.1.9"]) == [r.group_id(2, 1, 4, ((1, 0),))]


@needs_root
def test_fib_routes_are_the_kernels():
    """Mode fib forwards by the kernel's FIB: a route change is refused, tables untouched."""
    with Router(cfg(mode="fib"), tx_ifindex=1) as r:
        r.load()
        with pytest.raises(RouteError, match="mode fib forwards by the kernel's routes"):
            r.add_route("10.9.0.0/16", "via 10.0.1.2")
        assert len(r.user) == 0 and list(r.obj.map("rt_trie4_1").raw_keys()) == []


@needs_root
def test_own_addresses_and_their_filter():
    """rt_local4 holds every IPv4 interface address in its bucket; cfg.local4_filter has the bit
    of each used group of 4 buckets and no other."""
    import ctypes
    from nf.nfs.router import RtCfg, RtLocal4, local4_bucket
    c = cfg(interfaces=[{"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.0.0.1/24", "192.0.2.1/24", "2001:db8::1/64"]},
                        {"name": "p1", "ifindex": 1001, "mac": "02:00:00:00:00:02",
                         "addresses": ["10.0.1.1/24"]}])
    with Router(c, tx_ifindex=1) as r:
        r.load()
        own = [0x0A000001, 0xC0000201, 0x0A000101]
        m = r.obj.map("rt_local4").typed(ctypes.c_uint32, RtLocal4)
        for a in own:
            assert a.to_bytes(4, "big") in [x.to_bytes(4, "little") for x in m[local4_bucket(a)].addr]
        filt = r.obj.get_rodata("cfg", RtCfg).local4_filter
        assert filt == sum({1 << (local4_bucket(a) >> 2) for a in own})
        assert sum(1 for b in range(256) if any(m[b].addr)) == len({local4_bucket(a) for a in own})


def test_too_many_own_addresses_in_a_bucket():
    import ipaddress
    from nf.nfs.router import local4_bucket
    same = [a for a in range(0x0A000001, 0x0A00FFFF) if local4_bucket(a) == local4_bucket(0x0A000001)][:5]
    r = Router(cfg(groups=[], interfaces=[
        {"name": "p0", "ifindex": 1, "mac": "02:00:00:00:00:01",
         "addresses": [f"{ipaddress.IPv4Address(a)}/32" for a in same]}]))
    with pytest.raises(RouteError, match="share one of the datapath's 4-way buckets"):
        r._local4()


@needs_root
def test_static_neighbours_written():
    c = cfg(neighbours=[{"address": "10.0.1.2", "mac": "02:aa:00:00:00:02"},
                        {"address": "2001:db8::2", "mac": "02:aa:00:00:00:03"}])
    with Router(c, tx_ifindex=1) as r:
        r.load()
        assert r.neighbours() == {(1, "10.0.1.2"): ("02:aa:00:00:00:02", 1),
                                  (0, "2001:db8::2"): ("02:aa:00:00:00:03", 1)}


@needs_root
def test_close_releases_every_fd():
    n0 = len(os.listdir("/proc/self/fd"))
    for mode in ("dir", "trie", "fib"):
        r = Router(cfg(mode=mode), tx_ifindex=1)
        r.load()
        if mode != "fib":
            r.add_route("10.9.0.0/16", "via 10.0.1.2")
            assert r.lookup(["10.9.1.1"]) == [r.resolve_target("via 10.0.1.2")]
        r.close()
    assert len(os.listdir("/proc/self/fd")) == n0


@needs_root
def test_trie_overflow_then_recovers():
    """A fill that fails half-way (trie full) leaves that bank unknown; the next publish wipes and
    refills it, and traffic kept the old bank meanwhile."""
    from nf.routes import parse_route_lines
    with Router(cfg(mode="trie"), tx_ifindex=1) as r:
        r.load()
        small = parse_route_lines(["10.5.0.0/16 via 10.0.1.2"], r._resolver())
        r.replace_routes(small)
        big = parse_route_lines([f"10.{i}.0.0/16 via 10.0.1.2" for i in range(100, 180)], r._resolver())
        with pytest.raises(RouteError, match="LPM trie update failed"):
            r.replace_routes(big)
        assert r.lookup(["10.5.1.1"]) == [r.resolve_target("via 10.0.1.2")]
        assert r.user.v4_dict() == small.v4_dict()      # the failed replace changed nothing
        r.replace_routes(small)
        r.add_route("10.6.0.0/16", "via 10.0.1.2")
        assert r.lookup(["10.5.1.1", "10.6.1.1", "10.100.1.1"]) == [r.resolve_target("via 10.0.1.2")] * 2 + [0]


@needs_root
def test_default_route_counts_in_default_class():
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    c = cfg(routes=[{"prefix": "0.0.0.0/0", "via": ["10.0.1.2"]}, {"prefix": "10.9.0.0/16", "via": ["10.0.1.2"]}],
            neighbours=[{"address": "10.0.1.2", "mac": "02:aa:00:00:00:02"}])
    with Router(c, tx_ifindex=1) as r:
        r.load()
        for dst in ("8.8.8.8", "8.8.4.4", "10.9.1.1"):
            f = Ether(dst="02:00:00:00:00:01") / IP(src="10.0.0.5", dst=dst) / UDP()
            assert r.run(bytes(f))[0] == 4
        cs = r.class_stats()
        assert (cs["default"]["packets"], cs["static"]["packets"]) == (2, 1)


def test_generated_route_file_parses_with_example_config(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    from nf.config.router import load_router_config
    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "routes.txt"
    subprocess.run([sys.executable, str(root / "configs" / "gen_router_routes.py"), str(out),
                    "--v4", "3000", "--v6", "300"], check=True, timeout=120)
    c = load_router_config(root / "configs" / "router.yaml")
    for i, itf in enumerate(c.interfaces):
        itf.ifindex = 100 + i            # the example's interfaces need not exist here
    c.route_file = str(out)
    r = Router(c)
    assert len(r.user.v4_addr) == 3000 + 4 and len(r.user.v6) == 300 + 1   # + the YAML routes
    assert r.group(r.resolve_target("group uplinks")).count == 2
