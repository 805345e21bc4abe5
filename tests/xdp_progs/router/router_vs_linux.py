"""The router against Linux's own forwarding: a seeded generator of routes and frames, two labs
(Linux forwarding in one dut netns, the XDP router in another, same interfaces, addresses,
routes and static neighbours), and the runner that sends every frame into both and collects
what comes out of every host link. The comparison and the accepted differences live in
test_router_vs_linux.py. (Imported by path, like router_topo.py.)

Topology (both labs): hosts h1..h4, each one veth to the dut. The hosts are inert (no addresses,
IPv6 off, a native XDP pass program for XDP_TX wake-ups): they only capture. Dut ports:
p1..p3 10.0.i.1/24 + fd00:i::1/64, p4 10.0.4.0/31 + fd00:4::/127 (no broadcast, no subnet-router
anycast), p3's MTU 1,400 (the others 1,500). Neighbours are static on both sides: on ports 1..3
the addresses .2 .. .40 (v4, v6 and fe80::k for link-local sources), on p4 the peer .1.

Every frame carries a tag (IPv4 ID / IPv6 flow label, and the echo identifier) so each output
frame is attributed to the frame that caused it: a forward keeps the header, an ICMP error
quotes it, an echo reply keeps the identifier. ARP and ND are compared per round untagged.

Linux's own limits are taken out of the way: icmp_ratelimit / icmp_ratemask (v4, v6) are 0 and
the global ICMP budget is huge; ip_error's per-source budget (net.ipv4.route.error_cost, a
global sysctl of the initial netns, 5 errors then 1/s per source) is respected by the
generator instead: a source draws at most ERROR_BUDGET unreachable errors in a lab.
"""
from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoRequest, ICMPv6ND_NS,
                                ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, ICMPv6ParamProblem,
                                ICMPv6TimeExceeded, ICMPv6Unknown, IPerror6, IPv6,
                                IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                                IPv6ExtHdrRouting, HBHOptUnknown, PadN)
from scapy.layers.l2 import ARP, Ether

from nf.models.router import Lpm

PORTS = (1, 2, 3, 4)
MTU_PORT, MTU = 3, 1400
ONLINK = range(2, 41)          # static neighbours on ports 1..3 (host part)
GATEWAYS = range(2, 10)        # the ones routes use as next hops
ERROR_BUDGET = 4               # ip_error: 5 per source, then 1/s (route.error_cost, global)


def port_mac(i: int) -> str:
    from nf.net.lab import port_mac as pm
    return pm(i)


def neigh_mac(i: int, k: int) -> str:
    return f"02:{i:02x}:00:00:00:{k:02x}"


def v4net(i: int) -> ipaddress.IPv4Interface:
    return ipaddress.ip_interface("10.0.4.0/31" if i == 4 else f"10.0.{i}.1/24")


def v6net(i: int) -> ipaddress.IPv6Interface:
    return ipaddress.ip_interface("fd00:4::/127" if i == 4 else f"fd00:{i}::1/64")


def neighbours(i: int) -> list[tuple[str, str, str]]:
    """(v4, v6, mac) of the static neighbours of port i (the link-local ones: link_locals)."""
    if i == 4:
        return [("10.0.4.1", "fd00:4::1", neigh_mac(4, 1))]
    return [(f"10.0.{i}.{k}", f"fd00:{i}::{k:x}", neigh_mac(i, k)) for k in ONLINK]


def link_locals(i: int) -> list[tuple[str, str]]:
    return [(f"fe80::{k:x}", neigh_mac(i, k)) for k in (GATEWAYS if i != 4 else (1,))]


def gateway(i: int, fam: int, k: int | None = None) -> str:
    if i == 4:
        return "10.0.4.1" if fam == 4 else "fd00:4::1"
    k = GATEWAYS[0] if k is None else k
    return f"10.0.{i}.{k}" if fam == 4 else f"fd00:{i}::{k:x}"


def mac_of(i: int, addr: str) -> str:
    a = ipaddress.ip_address(addr)
    for v4, v6, mac in neighbours(i):
        if a == ipaddress.ip_address(v4) or a == ipaddress.ip_address(v6):
            return mac
    raise KeyError(addr)


def source_range(i: int, fam: int) -> ipaddress._BaseNetwork:
    """Remote sources behind port i's first gateway: errors and echo replies to them go back out
    port i to that gateway, as the router's XDP_TX sends them."""
    return ipaddress.ip_network(f"100.{64 + i}.0.0/16" if fam == 4 else f"2001:db8:5{i}::/48")


ROUTER_V4 = [str(v4net(i).ip) for i in PORTS]
ROUTER_V6 = [str(v6net(i).ip) for i in PORTS]


@dataclass(frozen=True)
class Route:
    prefix: str
    target: str        # "via ADDR" | "blackhole" | "unreachable"

    @property
    def net(self):
        return ipaddress.ip_network(self.prefix)


@dataclass
class Frame:
    tag: int
    ingress: int        # port / host number
    data: bytes
    desc: str


# ---- what the table does with an address (for the generator's choices only) ---------------------
class Table:
    """LPM over the generated routes plus what the kernel adds itself (connected subnets, own
    addresses, directed broadcasts, subnet-router anycast). Values: (kind, port or None)."""

    def __init__(self, routes: list[Route]):
        self.lpm = {4: Lpm(32), 6: Lpm(128)}
        for r in routes:
            kind = r.target.split()[0]
            port = None
            if kind == "via":
                gw = ipaddress.ip_address(r.target.split()[1])
                port = next(i for i in PORTS if gw in (v4net(i) if gw.version == 4 else v6net(i)).network)
            self._add(r.net, (kind, port))
        for i in PORTS:
            for itf in (v4net(i), v6net(i)):
                self._add(itf.network, ("conn", i))
                self._add(ipaddress.ip_network(itf.ip), ("local", i))
            n4 = v4net(i).network
            if n4.prefixlen < 31:
                self._add(ipaddress.ip_network(n4.broadcast_address), ("bcast", i))
            n6 = v6net(i).network
            if n6.prefixlen < 127:
                self._add(ipaddress.ip_network(n6.network_address), ("anycast", i))

    def _add(self, net, v) -> None:
        self.lpm[net.version].add(int(net.network_address), net.prefixlen, v)

    def kind(self, addr: str) -> tuple[str, int | None]:
        a = ipaddress.ip_address(addr)
        return self.lpm[a.version].lookup(int(a), ("none", None))


# ---- routes ---------------------------------------------------------------------------------------
class Generator:
    def __init__(self, seed: int, frames: int = 1200, routes4: int = 600, routes6: int = 400):
        self.seed = seed
        self.rnd = random.Random(seed)
        self.n_frames = frames
        self.routes = self._routes(routes4, routes6)
        self.defaults = [Route("0.0.0.0/0", f"via {gateway(3, 4, 3)}"),
                         Route("::/0", f"via {gateway(2, 6, 3)}")]
        self.error_uses: dict[str, int] = {}
        self.redirected: set[str] = set()
        self.tag = 0

    def _target(self, fam: int) -> str:
        x = self.rnd.random()
        if x < 0.12:
            return "blackhole"
        if x < 0.27:
            return "unreachable"
        i = self.rnd.choice(PORTS)
        return f"via {gateway(i, fam, self.rnd.choice(GATEWAYS))}"

    def _reserved(self, net) -> bool:
        """Prefixes the generator keeps for itself: inside a source range (its own route must
        win), the connected subnets themselves (the kernel's route), link-local / multicast /
        loopback space."""
        for i in PORTS:
            sr = source_range(i, net.version)
            if net.subnet_of(sr) and net != sr:
                return True
            if net == (v4net(i) if net.version == 4 else v6net(i)).network:
                return True
        if net.version == 4:
            return net.subnet_of(ipaddress.ip_network("127.0.0.0/8")) or \
                net.subnet_of(ipaddress.ip_network("224.0.0.0/4"))
        return any(net.subnet_of(ipaddress.ip_network(p)) for p in ("fe80::/10", "ff00::/8", "::/96"))

    def _routes(self, n4: int, n6: int) -> list[Route]:
        r = self.rnd
        out: dict[str, Route] = {}

        def add(net, target=None):
            net = ipaddress.ip_network(net, strict=False)
            if net.prefixlen == 0 or self._reserved(net) or str(net) in out:
                return
            out[str(net)] = Route(str(net), target or self._target(net.version))

        # nested chains: one prefix per length on the way down to an anchor address
        for _ in range(6):
            a = r.getrandbits(32)
            for n in range(1, 33):
                add(f"{ipaddress.IPv4Address(a)}/{n}")
        for k in range(6):
            a = (0x2 << 124) | r.getrandbits(125) if k < 4 else r.getrandbits(128)
            for n in (range(1, 129) if k < 2 else sorted(r.sample(range(1, 129), 40))):
                add(f"{ipaddress.IPv6Address(a)}/{n}")
        # overlaps with connected subnets, around and inside (never covering a gateway: .64 up)
        for p in ("10.0.0.0/8", "10.0.0.0/14", "10.0.2.0/23", "10.0.4.0/30", "fd00::/8",
                  "fd00::/16", "fd00:2::/31", "fd00:4::/126"):
            add(p)
        for i in (1, 2, 3):
            for p in (f"10.0.{i}.128/25", f"10.0.{i}.64/26", f"10.0.{i}.200/29", f"10.0.{i}.254/31",
                      f"10.0.{i}.255/32", f"10.0.{i}.1/32", f"10.0.{i}.0/32", f"10.0.{i}.100/30",
                      f"fd00:{i}::8000:0:0:0/65", f"fd00:{i}::4000:0:0:0/66", f"fd00:{i}::100/120",
                      f"fd00:{i}::1ff/128", f"fd00:{i}::1/128", f"fd00:{i}::/128", f"fd00:{i}::200/127"):
                add(p)
        # a BGP-like bulk
        while sum(1 for x in out.values() if x.net.version == 4) < n4:
            n = r.choice([8, 12, 16, 16, 19, 20, 22, 24, 24, 24, 24, 25, 27, 28, 30, 31, 32])
            add(f"{ipaddress.IPv4Address(r.getrandbits(32))}/{n}")
        while sum(1 for x in out.values() if x.net.version == 6) < n6:
            n = r.choice([16, 24, 29, 32, 32, 40, 44, 48, 48, 48, 56, 64, 64, 96, 112, 126, 127, 128])
            add(f"{ipaddress.IPv6Address((0x2 << 124) | r.getrandbits(125))}/{n}")
        # the remote source ranges, last (inner routes above must not shadow them)
        for i in PORTS:
            for fam in (4, 6):
                out[str(source_range(i, fam))] = Route(str(source_range(i, fam)), f"via {gateway(i, fam)}")
        return list(out.values())

    # ---- frames -----------------------------------------------------------------------------------
    def frames(self, table: Table, phase: str) -> list[Frame]:
        return [self._frame(table, phase) for _ in range(self.n_frames)]

    def _next_tag(self) -> int:
        self.tag += 1
        assert self.tag < 0xffff, "tags are 16 bits (IPv4 ID, echo identifier)"
        return self.tag

    def _dst(self, table: Table, fam: int, port: int) -> tuple[str, str]:
        r = self.rnd
        for _ in range(100):
            x = r.random()
            if x < 0.50:
                rt = r.choice([q for q in self._fam_routes(fam)])
                net = rt.net
                host = r.getrandbits(net.max_prefixlen - net.prefixlen) if net.prefixlen < net.max_prefixlen else 0
                edge = r.random()
                if edge < 0.1:
                    host = 0
                elif edge < 0.2:
                    host = (1 << (net.max_prefixlen - net.prefixlen)) - 1
                a, why = str(net.network_address + host), f"in {rt.prefix} ({rt.target})"
            elif x < 0.62:
                a, why = str(ipaddress.ip_address(r.getrandbits(32 if fam == 4 else 128) if fam == 4
                                                  else (0x2 << 124) | r.getrandbits(125))), "random"
            elif x < 0.75:
                i = r.choice(PORTS)
                v4, v6, _ = r.choice(neighbours(i))
                a, why = (v4 if fam == 4 else v6), f"neighbour on p{i}"
            elif x < 0.83:
                i = r.choice(PORTS)
                a, why = str((v4net(i) if fam == 4 else v6net(i)).ip), f"router p{i}"
            elif x < 0.90:
                i = r.choice(PORTS)
                n = (v4net(i) if fam == 4 else v6net(i)).network
                a, why = r.choice([(str(n.network_address), "network/anycast address"),
                                   (str(n.broadcast_address), "last address")]) if i != 4 or fam == 4 \
                    else (str(n.network_address), "network address")
                why += f" of p{i}"
            else:
                a, why = r.choice(self._special_dst(fam)), "special"
            k, p = table.kind(a)
            if k == "conn" and a not in {(v4 if fam == 4 else v6) for v4, v6, _ in neighbours(p)}:
                continue      # would need neighbour resolution: never static here
            if fam == 6 and ipaddress.ip_address(a).is_link_local and \
                    a not in {ll for ll, _ in link_locals(port)}:
                continue
            return a, f"dst {a} {why} [{k}]"
        raise RuntimeError("no usable destination")

    def _fam_routes(self, fam: int) -> list[Route]:
        key = f"_r{fam}"
        if not hasattr(self, key):
            setattr(self, key, [x for x in self.routes + self.defaults if x.net.version == fam])
        return getattr(self, key)

    @staticmethod
    def _special_dst(fam: int) -> list[str]:
        if fam == 4:
            return ["255.255.255.255", "224.0.0.5", "239.1.2.3", "127.0.0.1", "0.0.0.0", "0.1.2.3",
                    "240.0.0.1", "255.255.255.254", "169.254.9.9"]
        return ["::1", "::", "::ffff:10.0.2.2", "::10.0.2.2", "ff02::1", "ff05::2", "fe80::2",
                "fec0::1", "64:ff9b::1.2.3.4"]

    def _src(self, table: Table, fam: int, port: int, may_error: bool, hairpin: bool) -> tuple[str, str, str]:
        """(address, Ethernet source, description). Linux's ip_error() allows a source 5
        errors, then one a second; an ICMP redirect to that source (a packet forwarded back out
        of its own port) empties the same budget: such a source draws no more of those errors."""
        r = self.rnd
        for _ in range(100):
            x = r.random()
            if x < 0.45:
                v4, v6, mac = r.choice(neighbours(port))
                a, why = (v4 if fam == 4 else v6), "on-link"
            elif x < 0.80:
                net = source_range(port, fam)
                a = str(net.network_address + r.getrandbits(net.max_prefixlen - net.prefixlen))
                mac, why = mac_of(port, gateway(port, fam)), "remote"
            else:
                mac = r.choice(neighbours(port))[2]
                a, why = self._special_src(fam, port)
            if may_error and fam == 4:
                if self.error_uses.get(a, 0) >= ERROR_BUDGET or a in self.redirected:
                    continue
                self.error_uses[a] = self.error_uses.get(a, 0) + 1
            if hairpin and fam == 4:
                self.redirected.add(a)
            return a, mac, f"src {a} {why} [{table.kind(a)[0]}]"
        raise RuntimeError("no usable source")

    def _special_src(self, fam: int, port: int) -> tuple[str, str]:
        r = self.rnd
        other = r.choice([i for i in PORTS if i != port])
        if fam == 4:
            c = [("127.0.0.1", "loopback"), ("0.0.0.0", "zero"), ("0.1.2.3", "this-network"),
                 ("224.1.1.1", "multicast"), ("255.255.255.255", "limited broadcast"),
                 ("240.0.0.7", "class E"), (f"169.254.{r.randrange(256)}.{r.randrange(1, 255)}", "link-local"),
                 (r.choice(ROUTER_V4), "router's own"), (str(v4net(other).network.broadcast_address), "broadcast"),
                 (str(v4net(port).network.broadcast_address), "ingress broadcast"),
                 (str(v4net(other).network.network_address), "network address"),
                 (r.choice(neighbours(other))[0], "asymmetric (other port)"),
                 (f"198.18.{r.randrange(256)}.{r.randrange(1, 255)}", "remote, default route")]
        else:
            c = [("::1", "loopback"), ("::", "unspecified"), ("ff02::1", "multicast"),
                 (r.choice(link_locals(port))[0], "link-local"), (r.choice(ROUTER_V6), "router's own"),
                 (str(v6net(other).network.network_address), "subnet-router anycast"),
                 (r.choice(neighbours(other))[1], "asymmetric (other port)"), ("::ffff:1.2.3.4", "v4-mapped"),
                 (f"2001:db8:ffff::{r.randrange(1, 0xffff):x}", "remote, default route")]
        return r.choice(c)

    def _frame(self, table: Table, phase: str) -> Frame:
        r = self.rnd
        tag = self._next_tag()
        port = r.choice(PORTS)
        x = r.random()
        if x < 0.03:
            return self._arp(tag, port)
        fam = 4 if x < 0.52 else 6
        dst, ddesc = self._dst(table, fam, port)
        dkind, dport = table.kind(dst)
        src, smac, sdesc = self._src(table, fam, port, may_error=dkind in ("none", "unreachable"),
                                     hairpin=dport == port and dkind in ("via", "conn"))
        eth = Ether(src=smac, dst=port_mac(port))
        ttl = r.choice([64] * 6 + [1, 1, 1, 0, 2, r.randrange(256)])
        # frames into p3 are limited by its MTU (veth drops longer ones on the way in)
        limit = 14 + (MTU if port == MTU_PORT else 1500)
        big = table.kind(dst)[1] == MTU_PORT and port != MTU_PORT and r.random() < 0.35
        desc = [phase, f"p{port}", f"v{fam}", ddesc, sdesc, f"ttl {ttl}"]
        if fam == 4:
            pkt, more = self._v4(tag, src, dst, ttl, big)
        else:
            pkt, more = self._v6(tag, src, dst, ttl, big)
        desc += more
        data = bytearray(bytes(eth / pkt))
        data, more = self._damage(data, fam, limit)
        desc += more
        return Frame(tag, port, bytes(data), ", ".join(desc))

    def _payload(self, big: bool) -> bytes:
        n = self.rnd.randrange(1340, 1420) if big else self.rnd.choice([0, 1, 7, 18, 64, 200, 511])
        return (bytes(self.rnd.getrandbits(8) for _ in range(16)) * (n // 16 + 1))[:n]

    def _v4(self, tag: int, src: str, dst: str, ttl: int, big: bool):
        r = self.rnd
        more = []
        kw = {"id": tag, "tos": r.choice([0, 0, 0, 0x10, 0xb8, 0xfd, r.randrange(256)])}
        if big or r.random() < 0.3:
            kw["flags"] = "DF"
        y = r.random()
        if y < 0.08:
            kw["flags"], kw["frag"] = "MF", 0
            more.append("first fragment")
        elif y < 0.14:
            kw["flags"], kw["frag"] = r.choice(["MF", 0]), r.randrange(1, 200)
            more.append("non-first fragment")
        if r.random() < 0.08:
            opt = r.choice([
                (b"\x01\x01\x01\x00", "options NOP NOP NOP EOL"),
                (b"\x94\x04\x00\x00", "option router alert"),
                (b"\x07\x07\x04" + bytes(4) + b"\x00", "option record route"),
                (b"\x44\x0c\x05\x00" + bytes(8), "option timestamp"),
                (b"\x07\x02\x04\x00", "malformed: RR length 2"),
                (b"\x07\x07\x02" + bytes(4) + b"\x00", "malformed: RR pointer 2"),
                (b"\x44\x28\x05\x00", "malformed: option past the header"),
                (b"\x83\x03\x04\x00", "malformed: LSRR length 3"),
                (b"\x01\x99\x00\x00", "unknown option"),
            ])
            kw["options"] = opt[0]
            more.append(opt[1])
        ip = IP(src=src, dst=dst, ttl=ttl, **kw)
        z = r.random()
        if z < 0.35:
            l4 = UDP(sport=r.randrange(1, 65536), dport=r.choice([53, 9, 33434, r.randrange(1, 65536)]))
            body, what = l4 / self._payload(big), "udp"
        elif z < 0.5:
            body, what = TCP(sport=r.randrange(1024, 65536), dport=r.choice([22, 80, 179]),
                             flags=r.choice(["S", "A", "PA", "R"])) / self._payload(big), "tcp"
        elif z < 0.8:
            body, what = ICMP(type=8, id=tag, seq=r.randrange(65536)) / self._payload(big), "echo request"
            if r.random() < 0.15:
                body[ICMP].code = r.choice([1, 3])
                what += f" code {body[ICMP].code}"
        elif z < 0.92:
            t = r.choice([3, 11, 12, 5, 4])
            body = ICMP(type=t, code=r.choice([0, 1, 4])) / IPerror(src=dst, dst=src, id=tag) / UDPerror()
            what = f"icmp error type {t}"
        else:
            t = r.choice([13, 17, 18, 19, 40, 42, 254])
            body = ICMP(type=t, id=tag) / (bytes(12) if t == 13 else self._payload(False))
            what = f"icmp type {t}"
        more.append(what)
        pkt = ip / body
        if what.startswith("echo request") and r.random() < 0.12:
            raw = bytearray(bytes(pkt))
            hl = (raw[0] & 15) * 4
            raw[hl + 2] ^= 0x5a
            more.append("bad icmp checksum")
            return IP(bytes(raw)), more
        return pkt, more

    def _v6(self, tag: int, src: str, dst: str, ttl: int, big: bool):
        r = self.rnd
        more = []
        ip = IPv6(src=src, dst=dst, hlim=ttl, fl=tag, tc=r.choice([0, 0, 0, 0xb8, 0xfd, r.randrange(256)]))
        ext = None
        y = r.random()
        if y < 0.06:
            ext, what = IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)]), "dest options"
        elif y < 0.10:
            ext, what = IPv6ExtHdrRouting(type=r.choice([0, 4]), segleft=r.choice([0, 1]),
                                          addresses=[dst]), "routing header"
        elif y < 0.16:
            off = r.choice([0, 0, 5, 100])
            ext, what = IPv6ExtHdrFragment(offset=off, m=r.choice([0, 1]), id=tag), \
                f"fragment offset {off}"
        elif y < 0.22:
            ext, what = r.choice([
                (IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * 4)]), "hop-by-hop PadN"),
                (IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=0x80, optdata=b"ab")]),
                 "hop-by-hop unknown option (discard + ICMP)"),
                (IPv6ExtHdrHopByHop(options=[HBHOptUnknown(otype=0x1e, optdata=b"ab")]),
                 "hop-by-hop unknown option (skip)"),
            ])
        if ext is not None:
            more.append(what)
        z = r.random()
        if z < 0.35:
            body, what = UDP(sport=r.randrange(1, 65536), dport=r.choice([53, 9, r.randrange(1, 65536)])) / \
                self._payload(big), "udp"
        elif z < 0.5:
            body, what = TCP(sport=r.randrange(1024, 65536), dport=r.choice([22, 80]),
                             flags=r.choice(["S", "A"])) / self._payload(big), "tcp"
        elif z < 0.8:
            body, what = ICMPv6EchoRequest(id=tag, seq=r.randrange(65536), data=self._payload(big)), "echo request"
        elif z < 0.92:
            cls = r.choice([ICMPv6DestUnreach, ICMPv6TimeExceeded, ICMPv6PacketTooBig, ICMPv6ParamProblem])
            body, what = cls() / IPerror6(src=dst, dst=src, fl=tag) / UDPerror(), f"icmpv6 error {cls.__name__}"
        else:
            t = r.choice([130, 139, 200, 255])
            body, what = ICMPv6Unknown(type=t, msgbody=self._payload(False)), f"icmpv6 type {t}"
        more.append(what)
        pkt = ip / ext / body if ext is not None else ip / body
        if what == "echo request" and r.random() < 0.12:
            raw = bytearray(bytes(pkt))
            raw[len(raw) - len(bytes(pkt[ICMPv6EchoRequest])) + 2] ^= 0x5a
            more.append("bad icmpv6 checksum")
            return IPv6(bytes(raw)), more
        return pkt, more

    def _damage(self, data: bytearray, fam: int, limit: int):
        r = self.rnd
        x = r.random()
        if x < 0.03 and fam == 4:
            data[24] ^= 0x41
            return data, ["bad header checksum"]
        if x < 0.05:
            off = 16 if fam == 4 else 18
            n = struct.unpack_from("!H", data, off)[0]
            struct.pack_into("!H", data, off, n + r.choice([1, 8, 300]))
            if fam == 4:      # keep the header checksum right: only the length is wrong
                data[24:26] = b"\0\0"
                data[24:26] = struct.pack("!H", _csum(bytes(data[14:14 + (data[14] & 15) * 4])))
            return data, ["length beyond the frame"]
        if x < 0.14 and len(data) + 60 <= limit:
            pad = bytes(r.getrandbits(8) for _ in range(r.choice([1, 6, 20, 60])))
            return data + pad, [f"{len(pad)} bytes of trailing padding"]
        if x < 0.17 and len(data) < 600:
            pad = bytes([0xa5]) * (limit - len(data))
            return data + pad, [f"padded to {len(data) + len(pad)} bytes"]
        return data, []

    def _arp(self, tag: int, port: int) -> Frame:
        r = self.rnd
        v4, v6, mac = r.choice(neighbours(port))
        x = r.random()
        if x < 0.5:
            target = r.choice([str(v4net(port).ip), str(v4net(port).ip), v4net(port).network.broadcast_address,
                               neighbours(port)[-1][0]])
            f = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=mac, psrc=v4, pdst=str(target))
            return Frame(tag, port, bytes(f), f"p{port} arp who-has {target} from {v4}")
        target = r.choice([str(v6net(port).ip), str(v6net(port).network.network_address)])
        sn = ipaddress.ip_address(target).packed[-3:]
        mdst = "33:33:ff:" + ":".join(f"{b:02x}" for b in sn)
        f = Ether(src=mac, dst=mdst) / IPv6(src=v6, dst="ff02::1:ff" + f"{sn[0]:02x}:{sn[1]:02x}{sn[2]:02x}",
                                            hlim=255) / ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=mac)
        return Frame(tag, port, bytes(f), f"p{port} neighbour solicitation for {target} from {v6}")


def _csum(b: bytes) -> int:
    from nf.models.router import csum
    return csum(b)


# ---- labs ---------------------------------------------------------------------------------------------
SYSCTLS = {
    "net.ipv4.icmp_ratelimit": 0, "net.ipv4.icmp_ratemask": 0,
    "net.ipv4.icmp_msgs_per_sec": 10_000_000, "net.ipv4.icmp_msgs_burst": 10_000_000,
    "net.ipv6.icmp.ratelimit": 0, "net.ipv6.icmp.ratemask": "",
}


class DiffLab:
    """One dut netns with Linux forwarding configured for the generator's table, inert hosts
    around it. ``router_cfg()`` is the XDP router's config for the same topology and routes."""

    def __init__(self, routes: list[Route]):
        from nf.net import iface as _iface
        from nf.net.lab import HostSpec, Lab, LabSpec
        hosts = [HostSpec(name=f"h{i}", port_addresses=[str(v4net(i)), str(v6net(i))], ipv6=True)
                 for i in PORTS]
        self.lab = Lab(LabSpec(hosts=hosts, ipv6=True, ip_forward=True, host_gro=False, port_gro=False))
        self.held = []
        try:
            d = self.lab.dut
            for k, v in SYSCTLS.items():
                _iface.set_sysctl(k, v, d)
            for h in self.lab.hosts.values():
                _iface.set_sysctl(f"net.ipv6.conf.{h.ifname}.disable_ipv6", 1, h.netns)
                # neighbour advertisements for an anycast target wait up to this long (random)
                _iface.set_sysctl(f"net.ipv6.neigh.{h.port}.proxy_delay", 0, d)
            self._kernel(routes)
            self._host_programs()
        except BaseException:
            self.destroy()
            raise

    def _kernel(self, routes: list[Route]) -> None:
        from pyroute2 import IPRoute
        with self.lab.enter("dut"), IPRoute() as ipr:
            for i in PORTS:
                idx = ipr.link_lookup(ifname=f"p{i}")[0]
                if i == MTU_PORT:
                    ipr.link("set", index=idx, mtu=MTU)
                for v4, v6, mac in neighbours(i):
                    ipr.neigh("add", dst=v4, lladdr=mac, ifindex=idx, state=0x80)
                    ipr.neigh("add", dst=v6, lladdr=mac, ifindex=idx, state=0x80, family=10)
                for ll, mac in link_locals(i):
                    ipr.neigh("add", dst=ll, lladdr=mac, ifindex=idx, state=0x80, family=10)
            for r in routes:
                self.route(ipr, "add", r)

    @staticmethod
    def route(ipr, op: str, r: Route) -> None:
        fam = 10 if r.net.version == 6 else 2
        kw = {"dst": r.prefix, "family": fam}
        if r.target.startswith("via"):
            kw["gateway"] = r.target.split()[1]
        else:
            kw["type"] = r.target
        ipr.route(op, **kw)

    def _host_programs(self) -> None:
        from nf.bpf import XdpMode
        from nf.datapath import load_base
        for h in self.lab.hosts.values():
            obj = load_base()
            with self.lab.enter(h.name):
                self.held.append((obj, obj.program("xdp_base").attach_xdp(h.ifindex, XdpMode.NATIVE)))

    def delete_routes(self, routes: list[Route]) -> None:
        from pyroute2 import IPRoute
        with self.lab.enter("dut"), IPRoute() as ipr:
            for r in routes:
                self.route(ipr, "del", r)

    def run(self, frames: list[Frame], batch: int = 96) -> dict[int, list[tuple[int, bytes]]]:
        """Send the frames (in batches, each host's frames from its own link) and return
        {host number: [(batch number, frame), ...]} of everything the hosts received."""
        taps = [f"h{i}" for i in PORTS]
        out: dict[int, list[tuple[int, bytes]]] = {i: [] for i in PORTS}
        for b in range(0, len(frames), batch):
            part = frames[b:b + batch]
            with self.lab.capture(taps) as cap:
                for i in PORTS:
                    mine = [f.data for f in part if f.ingress == i]
                    if mine:
                        self.lab.send(f"h{i}", mine, pace_every=8, pace_s=0.002)
                got = cap.wait(timeout=5.0, quiet=0.25)
            for i in PORTS:
                out[i] += [(b // batch, x) for x in got[self.lab.tap(f"h{i}")]]
        return out

    def router_cfg(self, mode: str, routes: list[Route]) -> dict:
        itfs = []
        for h, i in zip(self.lab.hosts.values(), PORTS):
            itfs.append({"name": h.port, "mac": h.port_mac, "addresses": [str(v4net(i)), str(v6net(i))]})
        neigh = [{"address": a, "mac": mac} for i in PORTS for v4, v6, mac in neighbours(i) for a in (v4, v6)]
        rts = []
        for r in routes:
            if r.target.startswith("via"):
                rts.append({"prefix": r.prefix, "via": [r.target.split()[1]]})
            else:
                rts.append({"prefix": r.prefix, r.target: True})
        return {"mode": mode, "interfaces": itfs, "neighbours": neigh, "routes": rts,
                "icmp": {"rate": 10_000_000, "burst": 1_000_000},
                "sizes": {"v4_chunks": 4096, "v6_chunks": 32768, "trie_entries": 8192, "neighbours": 1024}}

    def destroy(self) -> None:
        for obj, link in self.held:
            try:
                link.detach()
            finally:
                obj.close()
        self.held = []
        self.lab.destroy()
