"""Shared helpers of the router tests: one small topology, the router loaded on it, and the
reference model built from the same controller state. (Imported by path: tests are not a package.)"""
from __future__ import annotations

from nf.config.router import validate_router_config
from nf.models.router import GroupM, Lpm, PortM, RouterModel
from nf.nfs.router import Router

MAC_P0, MAC_P1, MAC_P2 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
H0_MAC, GW1_MAC, GW2_MAC, GW6_MAC, H1_MAC = ("02:dd:00:00:00:05", "02:aa:00:00:00:02",
                                            "02:bb:00:00:00:02", "02:cc:00:00:00:02",
                                            "02:ee:00:00:00:07")


def topology(**extra) -> dict:
    """p0 (ifindex 1 = lo, the test_run ingress), p1 and p2 behind fixed ifindexes."""
    d = {
        "interfaces": [
            {"name": "p0", "ifindex": 1, "mac": MAC_P0, "addresses": ["10.0.0.1/24", "2001:db8::1/64"]},
            {"name": "p1", "ifindex": 1001, "mac": MAC_P1, "addresses": ["10.0.1.1/24", "2001:db8:1::1/64"]},
            {"name": "p2", "ifindex": 1002, "mac": MAC_P2, "addresses": ["10.0.2.1/24", "2001:db8:2::1/64"]},
        ],
        "groups": [{"name": "both", "via": ["10.0.1.2", "10.0.2.2"]},
                   {"name": "both6", "via": ["2001:db8:1::2", "2001:db8:2::2"]}],
        "routes": [
            {"prefix": "192.168.0.0/16", "via": ["10.0.1.2"]},
            {"prefix": "192.168.7.0/24", "via": ["10.0.2.2"]},
            {"prefix": "192.168.7.128/25", "via": ["10.0.1.2"]},
            {"prefix": "172.16.0.0/12", "group": "both"},
            {"prefix": "203.0.113.0/24", "blackhole": True},
            {"prefix": "198.51.100.0/24", "unreachable": True},
            {"prefix": "2001:db8:99::/48", "via": ["2001:db8:1::2"]},
            {"prefix": "2001:db8:99:8000::/49", "via": ["2001:db8:2::2"]},
            {"prefix": "2001:db8:aa::/48", "group": "both6"},
            {"prefix": "2001:db8:bb::/48", "blackhole": True},
        ],
        "neighbours": [
            {"address": "10.0.0.5", "mac": H0_MAC},
            {"address": "10.0.1.2", "mac": GW1_MAC},
            {"address": "10.0.2.2", "mac": GW2_MAC},
            {"address": "10.0.1.7", "mac": H1_MAC},
            {"address": "2001:db8::5", "mac": H0_MAC},
            {"address": "2001:db8:1::2", "mac": GW6_MAC},
            {"address": "2001:db8:2::2", "mac": GW2_MAC},
        ],
        "sizes": {"v4_chunks": 64, "v6_chunks": 256, "trie_entries": 1024, "neighbours": 1024},
    }
    d.update(extra)
    return d


def model_of(r: Router) -> RouterModel:
    import ctypes
    from nf.nfs.router import RtPort
    mtus = r.obj.map("rt_ports").typed(ctypes.c_uint32, RtPort)
    ports = [PortM(p.idx, p.ifindex, p.mac, p.ip4, p.ip6, mtu=mtus[p.idx].mtu) for p in r.ports]
    groups = {}
    for gid, g in r._groups.items():
        width = 4 if g.family == 4 else 16
        hops = [(g.hops[i].port, int.from_bytes(bytes(g.hops[i].gw)[:width], "big"))
                for i in range(g.count)] if g.kind in (1, 2) else []
        groups[gid] = GroupM(g.kind, g.cls, hops)
    rs = r.all_routes()
    neigh = {}
    for (port, addr), (mac, _) in r.neighbours().items():
        import ipaddress
        a = ipaddress.ip_address(addr)
        neigh[(port, a.version, int(a))] = bytes(int(x, 16) for x in mac.split(":"))
    return RouterModel(ports, groups, Lpm(32, rs.v4_dict()), Lpm(128, rs.v6_dict()), neigh,
                       icmp_errors=r.cfg.icmp.errors, echo=r.cfg.icmp.echo, seed=r.cfg.ecmp_seed,
                       unreach_admin=r.cfg.icmp.unreachable_routes == "prohibit")


def make_router(mode: str = "dir", **extra) -> Router:
    """The topology loaded (tx redirected to lo: test_run only reports the verdict)."""
    cfg = validate_router_config(topology(mode=mode, **extra))
    return Router(cfg, tx_ifindex=1).load()


# ---- lab helpers (tier 2) ------------------------------------------------------------------------
def router_cfg(lab, mode: str = "dir", neighbours: bool = True, **extra) -> dict:
    """The router on a LabSpec.router(3) lab: one interface per dut port, static neighbours for
    the hosts (unless neighbours=False), an ECMP group over h2 and h3 for 172.16.0.0/16."""
    hosts = list(lab.hosts.values())
    d = {
        "mode": mode,
        "interfaces": [{"name": h.port, "mac": h.port_mac, "addresses": list(h.port_addresses)}
                       for h in hosts],
        "neighbours": [{"address": a.split("/")[0], "mac": h.mac} for h in hosts for a in h.addresses]
        if neighbours else [],
        "groups": [{"name": "ecmp", "via": [h.ip4 for h in hosts[1:3]]}] if len(hosts) >= 3 else [],
        "routes": [{"prefix": "172.16.0.0/16", "group": "ecmp"}] if len(hosts) >= 3 else [],
        "sizes": {"v4_chunks": 64, "v6_chunks": 256, "trie_entries": 256, "neighbours": 256},
    }
    d.update(extra)
    return d


def host_xdp_pass(lab) -> list:
    """A native XDP pass program on every host end. Measured on 6.18: XDP_TX on a veth queues the
    frame on the peer but only kicks the peer's NAPI when the peer has an XDP program
    (veth_xdp_flush); with GRO alone the frame waits for the next unrelated packet. Redirects
    (ndo_xdp_xmit) do kick it, so only XDP_TX (ICMP errors, echo replies) needs this."""
    from nf.bpf import XdpMode
    from nf.datapath import load_base
    held = []
    for h in lab.hosts.values():
        obj = load_base()
        with lab.enter(h.name):
            held.append((obj, obj.program("xdp_base").attach_xdp(h.ifindex, XdpMode.NATIVE)))
    return held


def release(held) -> None:
    for obj, link in held:
        link.detach()
        obj.close()


def router_lab(hosts: int, in_dut=None):
    """Generator for a module fixture: a LabSpec.router(hosts) lab (v4 + v6), pass programs on
    the host ends, the router_cfg() router attached natively in the dut; `in_dut(lab)` runs in
    the dut first (e.g. to change a link). Yields (lab, router)."""
    from nf.bpf import XdpMode
    from nf.net.lab import Lab, LabSpec
    lab = Lab(LabSpec.router(hosts, ipv6=True))
    held = []
    try:
        held = host_xdp_pass(lab)
        with lab.enter("dut"):
            if in_dut is not None:
                in_dut(lab)
            r = Router(validate_router_config(router_cfg(lab))).load()
            r.attach(XdpMode.NATIVE)
        try:
            yield lab, r
        finally:
            r.close()
    finally:
        release(held)
        lab.destroy()

# The per-packet benchmark setup (hairpin routes, bench_router, bench_frame) is in
# nf/bench/router.py.
