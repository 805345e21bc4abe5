"""LPM router controller: config -> loaded XDP program -> tables, runtime route ops, counters.

    cfg = load_router_config("configs/router.yaml")
    with Router(cfg) as r:
        r.load()                       # maps sized, rodata set, ports/neighbours/routes written
        r.attach(mode=XdpMode.NATIVE)  # every interface of the config
        r.add_route("10.9.0.0/16", "via 10.0.2.2")
        r.replace_routes(routeset)     # built into the idle bank, then one 4-byte flip
        r.lookup(["10.9.1.1"])         # group ids through the datapath's own lookup code
        r.port_stats(), r.class_stats(), r.stats()

Routes are published by building the *whole* table into the idle bank (DIR-24-8 / multibit trie
arrays written through mmap, or the idle LPM trie map) and flipping rt_bank[0]: traffic sees the
old table or the new one, never a mix. A single add/delete therefore costs a rebuild (~0.2 s at
1M IPv4 routes); the arrays make that cheap enough that incremental painting is not needed yet.
"""
from __future__ import annotations

import ctypes
import ipaddress
import mmap
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nf import variants
from nf.bpf import BpfObject, XdpMode
from nf.bpf import libbpf as L
from nf.config.router import RouterConfig, check, load_router_config, port_of_gateway
from nf.net import netns
from nf.nfs.kind import VARIANTS, Kind, module_present, one_object
from nf.routes import (CHUNK, M64, V4_TBL24, V6_HDR_WORDS, V6_LEVELS, RouteError,
                       RouteSet, build_v4, build_v6, check_v4, check_v6, parse_prefix,
                       parse_route_lines, read_route_file)

OBJECT = "router/router"
PROGRAM = "xdp_router"
u8, u16, u32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64

# ---- router.h mirrors (checked against BTF by tests/xdp_progs/router/test_layout.py) -------------
RT_GROUPS, RT_ECMP_MAX, RT_PORTS, RT_CLASSES, RT_PROBES = 4096, 8, 64, 8, 65536
RT_IFINDEX_MAX = 65536
MODE = {"dir": 0, "trie": 1, "fib": 2}
KIND_NONE, KIND_FORWARD, KIND_CONNECTED, KIND_BLACKHOLE, KIND_LOCAL, KIND_UNREACHABLE, KIND_KERNEL = range(7)
CLASSES = ("noroute", "connected", "static", "ecmp", "blackhole", "local", "default", "kernel")
CLS = {n: i for i, n in enumerate(CLASSES)}
REASONS = ("no_route", "ttl", "neigh_miss", "blackhole", "local", "icmp_limited", "echo", "not_for_us")
F_ICMP_ERRORS, F_ECHO, F_LEARN, F_PURE, F_UNREACH_ADMIN = 1, 2, 4, 8, 16
RT_LOCAL4_BUCKETS = 256
NEIGH_STATIC, NEIGH_LEARNED = 1, 2
NEIGH_POLL_S = 1.0               # `nf agent`: how often a router's neighbours are synced


class _S(ctypes.Structure):
    __bpf_object__ = OBJECT


class RtHop(_S):
    __c_struct__ = "struct rt_hop"
    _fields_ = [("port", u32), ("gw", u8 * 16)]


class RtGroup(_S):
    __c_struct__ = "struct rt_group"
    _fields_ = [("kind", u8), ("count", u8), ("cls", u8), ("family", u8), ("hops", RtHop * RT_ECMP_MAX)]


class RtPort(_S):
    __c_struct__ = "struct rt_port"
    _fields_ = [("ifindex", u32), ("mac", u8 * 6), ("up", u8), ("pad", u8), ("ip4", u8 * 4),
                ("ip6", u8 * 16), ("mtu", u16), ("pad2", u16)]


def _link_mtu(ifindex: int) -> int:
    """The interface's MTU in this netns for rt_port.mtu (0 = unchecked: no such link, or an
    MTU above what the datapath's 16-bit field holds, e.g. lo's 65536)."""
    from pyroute2 import IPRoute
    try:
        with IPRoute() as ipr:
            mtu = ipr.get_links(ifindex)[0].get_attr("IFLA_MTU") or 0
    except Exception:  # noqa: BLE001 - pyroute2 raises NetlinkError/OSError for a missing link
        return 0
    return mtu if mtu <= 0xffff else 0


class RtLocal4(_S):
    __c_struct__ = "struct rt_local4"
    _fields_ = [("addr", u32 * 4)]


def local4_bucket(addr: int) -> int:
    """Bucket of an IPv4 address (host order) in rt_local4: is_local4() in router.bpf.c."""
    return ((addr * 0x9E3779B1) & 0xFFFFFFFF) >> 24


def local4(cfg: RouterConfig) -> dict[int, list[int]]:
    """The router's IPv4 addresses by rt_local4 bucket (sources the datapath drops as martians);
    RouteError when more than 4 share a bucket."""
    buckets: dict[int, list[int]] = {}
    for itf in cfg.interfaces:
        for a in itf.addresses:
            ia = ipaddress.ip_interface(a)
            if ia.version == 4 and int(ia.ip) not in buckets.get(local4_bucket(int(ia.ip)), []):
                buckets.setdefault(local4_bucket(int(ia.ip)), []).append(int(ia.ip))
    for addrs in buckets.values():
        if len(addrs) > 4:
            raise RouteError(f"interface addresses {', '.join(map(str, map(ipaddress.IPv4Address, addrs)))}"
                             f" share one of the datapath's 4-way buckets (at most 4 there)")
    return buckets


class RtNeighKey(_S):
    __c_struct__ = "struct rt_neigh_key"
    _fields_ = [("port", u32), ("family", u8), ("pad", u8 * 3), ("addr", u8 * 16)]


class RtNeigh(_S):
    __c_struct__ = "struct rt_neigh"
    _fields_ = [("mac", u8 * 6), ("flags", u16)]


class RtTrie4Key(_S):
    __c_struct__ = "struct rt_trie4_key"
    _fields_ = [("prefixlen", u32), ("addr", u8 * 4)]


class RtTrie6Key(_S):
    __c_struct__ = "struct rt_trie6_key"
    _fields_ = [("prefixlen", u32), ("addr", u8 * 16)]


class RtPortStats(_S):
    __c_struct__ = "struct rt_port_stats"
    _fields_ = [("rx_packets", u64), ("rx_bytes", u64), ("tx_packets", u64), ("tx_bytes", u64),
                ("icmp_out", u64), ("drops", u64)]


class RtClassStats(_S):
    __c_struct__ = "struct rt_class_stats"
    _fields_ = [("packets", u64), ("bytes", u64)]


class RtIcmpBucket(_S):
    __c_struct__ = "struct rt_icmp_bucket"
    _fields_ = [("last_ns", u64), ("tokens_milli", u64)]


class RtCfg(_S):
    __c_struct__ = "struct rt_cfg"
    _fields_ = [("mode", u32), ("flags", u32), ("icmp_rate", u32), ("icmp_burst", u32),
                ("ecmp_seed", u32), ("v6_bank_words", u32), ("local4_filter", u64)]


class RtProbe(_S):
    __c_struct__ = "struct rt_probe"
    _fields_ = [("addr", u8 * 16), ("family", u32), ("result", u32)]


# The IPv6 table's parts: nf/routes.py writes them as u32 words (V6_*_WORDS, checked against
# these sizes by tests/nf/test_routes.py).
class RtV6Hash(_S):
    __c_struct__ = "struct rt_v6_hash"
    _fields_ = [("c1", u64), ("c2", u64), ("n", u32), ("slots", u32)]


class RtV6Bank(_S):
    __c_struct__ = "struct rt_v6_bank"
    _fields_ = [("hash", RtV6Hash * 2), ("pad", u32 * 3), ("root", u32)]


class RtV6Slot(_S):
    __c_struct__ = "struct rt_v6_slot"
    _fields_ = [("key", u64), ("entry", u32), ("pad", u32)]


class RtV6Skip(_S):
    __c_struct__ = "struct rt_v6_skip"
    _fields_ = [("key_hi", u64), ("key_lo", u64), ("sh_hi", u8), ("sh_lo1", u8), ("sh_lo2", u8),
                ("len", u8), ("gid", u32), ("gid_else", u32), ("pad", u32)]


MIRRORS = (RtHop, RtGroup, RtPort, RtLocal4, RtNeighKey, RtNeigh, RtTrie4Key, RtTrie6Key, RtPortStats,
           RtClassStats, RtIcmpBucket, RtCfg, RtProbe, RtV6Hash, RtV6Bank, RtV6Slot, RtV6Skip)


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def _ifindex(name: str) -> int:
    try:
        return socket_if_nametoindex(name)
    except OSError:
        raise RouteError(f"interface {name!r} not found (give interfaces[].ifindex or create it)") from None


def socket_if_nametoindex(name: str) -> int:
    import socket
    return socket.if_nametoindex(name)


def _if_mac(name: str) -> bytes:
    # netlink, not /sys/class/net: sysfs shows the netns of its mount, not the calling thread's
    from nf.net.iface import InterfaceError, resolve
    try:
        return mac_bytes(resolve(name).mac)
    except (InterfaceError, OSError, ValueError):
        raise RouteError(f"interface {name!r}: cannot read its MAC (set interfaces[].mac)") from None


OBJECT_CHAIN = "router/router_chain"
STATE_PIN = "ctl_state"          # the controller's own state: groups and routes (see save_state)
_STATE_CHUNK = 1 << 16


class _PinnedObject:
    """The part of BpfObject the controller uses (map(name), program(name), close()), served
    from a deployment's pins, so every method works the same on a router opened from pins."""

    def __init__(self, d: Path):
        self.d, self._maps, self._progs = d, {}, {}

    def map(self, name: str):
        from nf.bpf import Map
        if name not in self._maps:
            self._maps[name] = Map.from_pin(self.d / name)
        return self._maps[name]

    def program(self, name: str):
        from nf.bpf import Program
        if name not in self._progs:
            self._progs[name] = Program.from_pin(self.d / KIND.pins("pure")[name])
        return self._progs[name]

    def close(self) -> None:
        for o in [*self._maps.values(), *self._progs.values()]:
            o.close()
        self._maps, self._progs = {}, {}


@dataclass
class PortInfo:
    idx: int
    name: str
    ifindex: int
    mac: bytes
    ip4: int = 0
    ip6: int = 0



def v6_bank_words(cfg) -> int:
    """Words of the flat IPv6 table per bank: header and root, then sizes.v6_chunks KiB for the
    /48 table, nodes and records (mode dir)."""
    if cfg.mode != "dir":
        return V6_HDR_WORDS
    return V6_HDR_WORDS + (1 << V6_LEVELS[0]) + cfg.sizes.v6_chunks * CHUNK

class Router:
    """One router instance. ``tx_ifindex`` overrides the devmap target of every port (tier-1
    tests redirect everything to lo, where test_run only reports the verdict)."""

    def __init__(self, cfg: RouterConfig, *, tx_ifindex: int | None = None):
        self.cfg = check(cfg)
        self.tx_ifindex = tx_ifindex
        self.obj: BpfObject | None = None
        self.pin_dir: Path | None = None     # set by up(pin=True) / open_pinned
        self.ports: list[PortInfo] = []
        self.by_name: dict[str, PortInfo] = {}
        with netns.enter(cfg.netns):          # names, MACs resolve in the router's netns
            self._resolve_ports(cfg)
        self._group_ids: dict[tuple, int] = {}
        self._groups: dict[int, RtGroup] = {}
        self._gnames = {g.name: g for g in cfg.groups}
        self.user = RouteSet.empty()
        self.bank = 0
        self._mm: dict[str, tuple[mmap.mmap, np.ndarray]] = {}
        # what each bank's tries hold ({(addr, len): gid} per family), None = unknown (a failed fill)
        self._trie_state: list[list[dict | None]] = [[{}, {}], [{}, {}]]
        self.links: list = []
        self._static_routes()

    def _resolve_ports(self, cfg: RouterConfig) -> None:
        for i, itf in enumerate(cfg.interfaces):
            ifindex = itf.ifindex or _ifindex(itf.name)
            if ifindex >= RT_IFINDEX_MAX:
                raise RouteError(f"interface {itf.name}: ifindex {ifindex} >= {RT_IFINDEX_MAX}")
            mac = mac_bytes(itf.mac) if itf.mac else _if_mac(itf.name)
            p = PortInfo(i, itf.name, ifindex, mac)
            for a in itf.addresses:
                ia = ipaddress.ip_interface(a)
                if ia.version == 4 and not p.ip4:
                    p.ip4 = int(ia.ip)
                elif ia.version == 6 and not p.ip6 and not ia.ip.is_link_local:
                    p.ip6 = int(ia.ip)
            self.ports.append(p)
            self.by_name[itf.name] = p

    # ---- groups and targets -------------------------------------------------------------------
    def group_id(self, kind: int, cls: int, family: int, hops: tuple[tuple[int, int], ...] = ()) -> int:
        key = (kind, cls, family, hops)
        gid = self._group_ids.get(key)
        if gid is None:
            gid = len(self._group_ids) + 1
            if gid >= RT_GROUPS:
                raise RouteError(f"more than {RT_GROUPS - 1} distinct route targets")
            g = RtGroup(kind=kind, cls=cls, family=family, count=max(1, len(hops)))
            for i, (port, gw) in enumerate(hops):
                g.hops[i].port = port
                g.hops[i].gw[:] = list(gw.to_bytes(4 if family == 4 else 16, "big")) + \
                    [0] * (12 if family == 4 else 0)
            self._group_ids[key] = gid
            self._groups[gid] = g
        return gid

    def group(self, gid: int) -> RtGroup:
        return self._groups[gid]

    def resolve_target(self, text: str, family: int | None = None, default: bool = False) -> int:
        """Route file target text -> group id (ValueError with a reason when invalid)."""
        toks = text.split()
        if toks == ["blackhole"]:
            return self.group_id(KIND_BLACKHOLE, CLS["blackhole"], family or 4)
        if toks == ["unreachable"]:
            return self.group_id(KIND_UNREACHABLE, CLS["blackhole"], family or 4)
        if len(toks) == 2 and toks[0] == "group":
            g = self._gnames.get(toks[1])
            if g is None:
                raise ValueError(f"unknown group {toks[1]!r}")
            return self._hops_gid([("via", v) for v in g.via], None, default)
        vias, dev, i = [], None, 0
        while i < len(toks):
            if toks[i] in ("via", "dev") and i + 1 < len(toks):
                if toks[i] == "via":
                    vias.append(("via", toks[i + 1]))
                else:
                    dev = toks[i + 1]
                i += 2
                continue
            raise ValueError(f"cannot parse target {text!r} (via ADDR.../dev IF/group NAME/"
                             f"blackhole/unreachable)")
        if not vias and dev is None:
            raise ValueError(f"cannot parse target {text!r}")
        if not vias:
            p = self.by_name.get(dev)
            if p is None:
                raise ValueError(f"unknown interface {dev!r}")
            return self.group_id(KIND_CONNECTED, CLS["connected"], family or 4, ((p.idx, 0),))
        return self._hops_gid(vias, dev, default)

    def _hops_gid(self, vias, dev, default: bool) -> int:
        hops, fams = [], set()
        if len(vias) > RT_ECMP_MAX:
            raise ValueError(f"at most {RT_ECMP_MAX} next hops per route")
        for _, v in vias:
            try:
                a = ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"malformed next hop {v!r}") from None
            if dev is not None and dev not in self.by_name:
                raise ValueError(f"unknown interface {dev!r}")
            name = port_of_gateway(self.cfg, v, dev)
            if name is None:
                raise ValueError(f"next hop {v} is on no connected subnet")
            hops.append((self.by_name[name].idx, int(a)))
            fams.add(a.version)
        if len(fams) != 1:
            raise ValueError("next hops mix IPv4 and IPv6")
        cls = CLS["ecmp"] if len(hops) > 1 else (CLS["default"] if default else CLS["static"])
        return self.group_id(KIND_FORWARD, cls, fams.pop(), tuple(hops))

    def _static_routes(self) -> None:
        """Connected subnets, the router's own addresses and what Linux delivers locally on a
        connected subnet (its directed broadcast, below /31; its subnet-router anycast address,
        below /127: RFC 3021, RFC 6164), always present and winning over user routes."""
        d4, d6 = {}, {}
        for p, itf in zip(self.ports, self.cfg.interfaces):
            for a in itf.addresses:
                ia = ipaddress.ip_interface(a)
                d = d4 if ia.version == 4 else d6
                net = ia.network
                d[(int(net.network_address), net.prefixlen)] = self.group_id(
                    KIND_CONNECTED, CLS["connected"], ia.version, ((p.idx, 0),))
                if ia.version == 4 and net.prefixlen < 31:
                    d[(int(net.broadcast_address), 32)] = self.group_id(KIND_KERNEL, CLS["local"], 4)
                if ia.version == 6 and net.prefixlen < 127 and int(net.network_address):
                    d.setdefault((int(net.network_address), 128), self.group_id(KIND_KERNEL, CLS["local"], 6))
        for itf in self.cfg.interfaces:      # an own address wins over a broadcast / anycast one
            for a in itf.addresses:
                ia = ipaddress.ip_interface(a)
                (d4 if ia.version == 4 else d6)[(int(ia.ip), ia.max_prefixlen)] = \
                    self.group_id(KIND_LOCAL, CLS["local"], ia.version)
        self.fixed = RouteSet.from_dicts(d4, d6)
        # config routes and the route file
        lines = [f"{r.prefix} {r.target()}" for r in self.cfg.routes]
        self.user = parse_route_lines(lines, self._resolver(), "<config routes>")
        if self.cfg.route_file:
            self.user = self.user.merged(read_route_file(self.cfg.route_file, self._resolver()))

    def _resolver(self):
        def res(text: str) -> int:
            return self.resolve_target(text)
        return res

    # ---- load ---------------------------------------------------------------------------------
    def load(self) -> "Router":
        """Loaded by the engine (nothing pinned, no attach) and filled from the config."""
        from nf import engine
        self.obj = engine.load(KIND, KIND.resolved(self.cfg))
        try:
            self.fill()
        except BaseException:
            self.close()
            raise
        return self

    def fill(self) -> dict:
        """The tables' first contents: ports (MTUs read in the router's netns), neighbours, the
        routes in one bank (or, in fib mode, only the saved state of a pinned deployment)."""
        if self.cfg.mode == "dir":
            self._map_tables()
        with netns.enter(self.cfg.netns):
            self._write_ports()
        self._write_local4()
        self._write_neighbours()
        if self.cfg.mode != "fib":
            self.publish()
        elif self.pin_dir is not None:
            self.save_state()
        return {"routes": len(self.user.v4_addr) + self.user.n6}

    @property
    def v6_bank_words(self) -> int:
        return v6_bank_words(self.cfg)

    def _map_tables(self) -> None:
        for n in ("rt_v4_tbl24", "rt_v4_tbl8", "rt_v6"):
            self._mm[n] = self._mmap_u32(n)

    # ---- deployment through pins (the CLI) ------------------------------------------------------
    @property
    def name(self) -> str:
        return self.cfg.name

    def up(self, mode: XdpMode = XdpMode.AUTO) -> "Router":
        """load() + attach() in this process (a deployment that outlives it: nf.engine)."""
        try:
            self.load()
            self.attach(mode)
        except BaseException:
            self.down()
            raise
        return self

    def save_state(self) -> None:
        """Store the groups and the user routes next to the maps (a pinned ARRAY of 64 KiB
        chunks, replaced by an atomic rename), so another process reopens the same table: the
        DIR-24-8 arrays cannot be turned back into prefixes."""
        import json
        import struct
        from nf.bpf import Map
        u = self.user
        head = json.dumps({
            "groups": [[k[0], k[1], k[2], [[p, g] for p, g in k[3]], gid]
                       for k, gid in sorted(self._group_ids.items(), key=lambda kv: kv[1])],
            "n4": int(len(u.v4_addr)), "n6": u.n6}).encode()
        blob = (struct.pack("<QQ", len(head), 0) + head
                + np.ascontiguousarray(u.v4_addr, np.uint32).tobytes()
                + np.ascontiguousarray(u.v4_len, np.uint8).tobytes()
                + np.ascontiguousarray(u.v4_gid, np.uint32).tobytes()
                + b"".join(np.ascontiguousarray(x).tobytes() for x in u.v6_arrays))
        blob = struct.pack("<Q", 8 + len(blob)) + blob     # total length, this word included
        n = -(-len(blob) // _STATE_CHUNK)
        m = Map.create("array", 4, _STATE_CHUNK, n, name="rt_ctl_state")
        try:
            blob += bytes(n * _STATE_CHUNK - len(blob))
            for i in range(n):
                m.update(i.to_bytes(4, "little"), blob[i * _STATE_CHUNK:(i + 1) * _STATE_CHUNK])
            tmp = self.pin_dir / "_ctl_state_new"
            if tmp.exists():
                tmp.unlink()
            m.pin(tmp)
            os.rename(tmp, self.pin_dir / STATE_PIN)
        finally:
            m.close()

    def _load_state(self) -> None:
        import json
        import struct
        from nf.bpf import Map
        m = Map.from_pin(self.pin_dir / STATE_PIN)
        try:
            first = m.lookup(bytes(4))
            total = struct.unpack_from("<Q", first)[0]
            blob = b"".join(m.lookup(i.to_bytes(4, "little"))
                            for i in range(-(-total // _STATE_CHUNK)))[:total]
        finally:
            m.close()
        hl = struct.unpack_from("<Q", blob, 8)[0]
        head = json.loads(blob[24:24 + hl])
        o, n4 = 24 + hl, head["n4"]
        v4a = np.frombuffer(blob, np.uint32, n4, o).copy()
        v4l = np.frombuffer(blob, np.uint8, n4, o + 4 * n4).copy()
        v4g = np.frombuffer(blob, np.uint32, n4, o + 5 * n4).copy()
        o, n6 = o + 9 * n4, head.get("n6", 0)
        v6 = tuple(np.frombuffer(blob, t, n6, o + off).copy() for t, off in
                   ((np.uint64, 0), (np.uint64, 8 * n6), (np.uint8, 16 * n6), (np.uint32, 17 * n6)))
        self._group_ids, self._groups = {}, {}
        for kind, cls, fam, hops, gid in head["groups"]:   # same order: same ids
            got = self.group_id(kind, cls, fam, tuple((p, g) for p, g in hops))
            if got != gid:
                raise RuntimeError(f"router {self.name}: saved group {gid} came back as {got}")
        # "v6": the text form of state saved before the IPv6 routes were arrays
        self.user = RouteSet(v4a, v4l, v4g, [(int(a), n, g) for a, n, g in head["v6"]]
                             if "v6" in head else v6)

    @classmethod
    def open_pinned(cls, cfg: RouterConfig, name: str | None = None) -> "Router":
        """A controller for a router deployed with up(pin=True) by another process (same
        config): routes, neighbours, lookups and counters act on the pinned maps; down()
        removes the deployment."""
        from nf.bpf import instance_dir
        if name and name != cfg.name:
            cfg = cfg.model_copy(update={"name": name})
        cfg = cfg.model_copy(update={"route_file": None})   # the saved routes replace it
        d = instance_dir(cfg.name, create=False)
        if not (d / STATE_PIN).exists():
            raise RuntimeError(f"no router {cfg.name!r} is deployed ({d} has no controller state)")
        r = cls(cfg)
        r.pin_dir = d
        r.obj = _PinnedObject(d)
        try:
            r._load_state()
            r.bank = r.obj.map("rt_bank").typed(u32, u32)[0]
            r._trie_state = [[None, None], [None, None]]   # unknown here: the next fill rewrites
            if cfg.mode == "dir":
                r._map_tables()
        except BaseException:
            r.release()
            raise
        return r

    def release(self) -> None:
        """Close this process's fds and mappings; a pinned deployment keeps running."""
        for link in self.links:
            link.close()
        self.links.clear()
        self.close()
        self.pin_dir = None

    def down(self) -> None:
        """Detach, release every fd and remove the pins of a pinned deployment."""
        pinned = self.pin_dir
        self.close()
        self.pin_dir = None
        if pinned is not None:
            from nf.deploy import cleanup_pins
            cleanup_pins(self.name)

    def target_text(self, gid: int) -> str:
        """A group id back in route-file syntax (a named group shows as its next hops)."""
        keys = {g: k for k, g in self._group_ids.items()}
        kind, _cls, fam, hops = keys[gid]
        if kind == KIND_BLACKHOLE:
            return "blackhole"
        if kind == KIND_UNREACHABLE:
            return "unreachable"
        if kind == KIND_LOCAL:
            return "local"
        if kind == KIND_KERNEL:
            return "broadcast" if fam == 4 else "anycast"
        if kind == KIND_CONNECTED:
            return f"dev {self.ports[hops[0][0]].name}"
        return " ".join(f"via {ipaddress.ip_address(g)}" for _, g in hops)

    def route_list(self, limit: int | None = None, fixed: bool = False) -> list[tuple[str, str]]:
        """(prefix, target) of the user routes (plus connected/local with ``fixed``), IPv4
        then IPv6, each sorted by address and length; at most ``limit``."""
        out = []
        for rs in ([self.user, self.fixed] if fixed else [self.user]):
            order = np.lexsort((rs.v4_len, rs.v4_addr))
            for i in order[:limit] if limit else order:
                out.append((f"{ipaddress.IPv4Address(int(rs.v4_addr[i]))}/{int(rs.v4_len[i])}",
                            int(rs.v4_gid[i])))
            order = np.lexsort((rs.v6_len, rs.v6_lo, rs.v6_hi))
            for i in order[:limit] if limit else order:
                a = (int(rs.v6_hi[i]) << 64) | int(rs.v6_lo[i])
                out.append((f"{ipaddress.IPv6Address(a)}/{int(rs.v6_len[i])}", int(rs.v6_gid[i])))
        out = out[:limit] if limit else out
        return [(p, self.target_text(g)) for p, g in out]

    def delete_neighbour(self, address: str, dev: str | None = None) -> bool:
        a = ipaddress.ip_address(address)
        name = dev or port_of_gateway(self.cfg, address)
        if name not in self.by_name:
            raise ValueError(f"neighbour {address}: on no router port" if dev is None
                             else f"unknown interface {dev!r}")
        k = RtNeighKey(port=self.by_name[name].idx, family=a.version)
        k.addr[:len(a.packed)] = list(a.packed)
        gone = self.obj.map("rt_neigh").typed(RtNeighKey, RtNeigh).delete(k)
        gen = self.obj.map("rt_neigh_gen").typed(u32, u64)
        gen[0] = gen[0] + 1      # per-CPU neighbour caches drop the entry
        return bool(gone)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per-group counters (the CLI's stats): each port, then each route class."""
        out = dict(self.port_stats())
        for c, v in self.class_stats().items():
            out[f"class {c}"] = v
        return out

    def _mmap_u32(self, name: str):
        m = self.obj.map(name)
        size = m.value_size * m.max_entries
        size = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        mm = mmap.mmap(m.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        return mm, np.frombuffer(mm, np.uint32, count=m.value_size * m.max_entries // 4)

    def _write_ports(self) -> None:
        ports = self.obj.map("rt_ports").typed(u32, RtPort)
        ifx = self.obj.map("rt_ifindex").typed(u32, u32)
        tx = self.obj.map("rt_tx").typed(u32, u32)
        for p in self.ports:
            v = RtPort(ifindex=p.ifindex, up=1, mtu=_link_mtu(p.ifindex))
            v.mac[:] = list(p.mac)
            v.ip4[:] = list(p.ip4.to_bytes(4, "big"))
            v.ip6[:] = list(p.ip6.to_bytes(16, "big"))
            ports[p.idx] = v
            ifx[p.ifindex] = p.idx + 1   # 0 = not a router port
            tx[p.idx] = self.tx_ifindex or p.ifindex

    def _local4(self) -> dict[int, list[int]]:
        return local4(self.cfg)

    def _write_local4(self) -> None:
        m = self.obj.map("rt_local4").typed(u32, RtLocal4)
        for b, addrs in self._local4().items():
            v = RtLocal4()
            for i, a in enumerate(addrs):
                v.addr[i] = int.from_bytes(a.to_bytes(4, "big"), "little")   # network order
            m[b] = v

    def _write_neighbours(self) -> None:
        for n in self.cfg.neighbours:
            name = port_of_gateway(self.cfg, n.address, n.dev)
            self.set_neighbour(self.by_name[name].idx, n.address, n.mac, static=True)

    def set_neighbour(self, port: int, address: str, mac: str, static: bool = False) -> None:
        a = ipaddress.ip_address(address)
        k = RtNeighKey(port=port, family=a.version)
        k.addr[:len(a.packed)] = list(a.packed)
        v = RtNeigh(flags=NEIGH_STATIC if static else NEIGH_LEARNED)
        v.mac[:] = list(mac_bytes(mac))
        self.obj.map("rt_neigh").typed(RtNeighKey, RtNeigh)[k] = v
        # after the entry: the datapath's per-CPU neighbour cache drops entries of older generations
        gen = self.obj.map("rt_neigh_gen").typed(u32, u64)
        gen[0] = gen[0] + 1

    def neighbours(self) -> dict[tuple[int, str], tuple[str, int]]:
        """(port, address) -> (mac, flags) for every entry of the datapath's table."""
        out = {}
        for k, v in self.obj.map("rt_neigh").typed(RtNeighKey, RtNeigh).items():
            raw = bytes(k.addr)
            a = ipaddress.ip_address(raw[:4] if k.family == 4 else raw)
            out[(k.port, str(a))] = (":".join(f"{b:02x}" for b in bytes(v.mac)), v.flags)
        return out

    # ---- neighbours from the kernel ----------------------------------------------------------------
    NUD_USABLE = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80  # reachable stale delay probe noarp permanent

    def misses(self) -> list[tuple[int, str]]:
        """(port, address) of neighbour misses the datapath reported (rt_neigh_miss)."""
        out = []
        for k in self.obj.map("rt_neigh_miss").typed(RtNeighKey, u64).keys():
            raw = bytes(k.addr)
            out.append((k.port, str(ipaddress.ip_address(raw[:4] if k.family == 4 else raw))))
        return out

    def poll_neighbours(self, resolve: bool = True) -> int:
        """Mirror the kernel's usable neighbour entries on router ports into rt_neigh (static
        entries win) and ask the kernel to resolve every reported miss: a datagram to the
        discard port from a socket bound to the port makes it ARP / solicit on its connected
        route. Acts in the calling thread's netns. Returns the number of entries mirrored."""
        import socket
        from pyroute2 import IPRoute

        by_ifindex = {p.ifindex: p for p in self.ports}
        table = self.neighbours()
        mirrored = 0
        with IPRoute() as ipr:
            for msg in ipr.get_neighbours():
                p = by_ifindex.get(msg["ifindex"])
                dst, lladdr = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
                if p is None or not dst or not lladdr or not (msg["state"] & self.NUD_USABLE):
                    continue
                cur = table.get((p.idx, str(ipaddress.ip_address(dst))))
                if cur is not None and (cur[1] & NEIGH_STATIC or cur[0] == lladdr.lower()):
                    continue
                self.set_neighbour(p.idx, dst, lladdr)
                mirrored += 1
        table = self.neighbours()
        misses = self.obj.map("rt_neigh_miss").typed(RtNeighKey, u64)
        for k in list(misses.keys()):
            raw = bytes(k.addr)
            addr = str(ipaddress.ip_address(raw[:4] if k.family == 4 else raw))
            if (k.port, addr) in table:
                misses.delete(k)
                continue
            if resolve and k.port < len(self.ports):
                fam = socket.AF_INET if k.family == 4 else socket.AF_INET6
                with socket.socket(fam, socket.SOCK_DGRAM) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                                 self.ports[k.port].name.encode())
                    try:
                        s.sendto(b"", (addr, 9))
                    except OSError:
                        pass  # unreachable right now: the next poll tries again
        return mirrored

    def start_neighbour_sync(self, interval: float = 0.5, netns: str | None = None):
        """Run poll_neighbours() every ``interval`` seconds in a daemon thread (inside ``netns``
        when given: the thread enters it, the caller's thread is untouched). Returns a stop()."""
        import threading

        stop = threading.Event()

        def loop():
            from contextlib import nullcontext
            from nf.net import netns as _netns
            with (_netns.enter(netns) if netns else nullcontext()):
                while not stop.wait(interval):
                    if self.obj is None:
                        return
                    try:
                        self.poll_neighbours()
                    except Exception:  # noqa: BLE001 - keep syncing; the next round retries
                        pass

        t = threading.Thread(target=loop, name="router-neigh-sync", daemon=True)
        t.start()

        def halt():
            stop.set()
            t.join(timeout=5)
        self._stop_sync = halt
        return halt

    def ensure_kernel_addresses(self) -> int:
        """Give the kernel every configured interface address it lacks, so it has the connected
        routes it needs to resolve next hops and answer ARP/ND for the router. Returns how many
        were added (calling thread's netns)."""
        from pyroute2 import IPRoute

        added = 0
        with IPRoute() as ipr:
            for p, itf in zip(self.ports, self.cfg.interfaces):
                have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=p.ifindex)}
                for a in itf.addresses:
                    ia = ipaddress.ip_interface(a)
                    if (str(ia.ip), ia.network.prefixlen) not in have:
                        ipr.addr("add", index=p.ifindex, address=str(ia.ip), prefixlen=ia.network.prefixlen)
                        added += 1
        return added

    # ---- routes -------------------------------------------------------------------------------
    def all_routes(self, user: RouteSet | None = None) -> RouteSet:
        """What the datapath holds (or would, for ``user``): routes + connected + local."""
        return self._default_class(self.user if user is None else user).merged(self.fixed)

    def publish(self, user: RouteSet | None = None) -> None:
        """Build every table into the idle bank, then flip the bank index (one 4-byte write).
        ``user`` (default: the current routes) becomes current only when the flip happened: a
        failed build leaves traffic and the controller's view on the old table."""
        if self.cfg.mode == "fib":
            raise RouteError("mode fib forwards by the kernel's routes: change them with `ip route` "
                             "in the router's netns")
        user = self.user if user is None else user
        routes = self.all_routes(user)
        idle = 1 - self.bank
        if self.cfg.mode == "dir":
            self._fill_dir(idle, routes)
        else:
            self._fill_trie(idle, routes)
        self._write_groups(idle)
        self.obj.map("rt_bank").typed(u32, u32)[0] = idle
        self.bank = idle
        self.user = user
        if self.pin_dir is not None:
            self.save_state()

    def _default_class(self, rs: RouteSet) -> RouteSet:
        """Default routes (/0) count in the "default" class: their forwarding groups get a twin
        that differs only in the class."""
        keys = {gid: key for key, gid in self._group_ids.items()}

        def twin(gid: int) -> int:
            kind, cls, fam, hops = keys[gid]
            if kind != KIND_FORWARD or cls == CLS["ecmp"]:
                return gid
            return self.group_id(kind, CLS["default"], fam, hops)
        z = rs.v4_len == 0
        v4_gid = rs.v4_gid
        if z.any():
            v4_gid = v4_gid.copy()
            v4_gid[z] = [twin(int(g)) for g in v4_gid[z]]
        z = rs.v6_len == 0
        v6_gid = rs.v6_gid
        if z.any():
            v6_gid = v6_gid.copy()
            v6_gid[z] = [twin(int(g)) for g in v6_gid[z]]
        return RouteSet(rs.v4_addr, rs.v4_len, v4_gid, (rs.v6_hi, rs.v6_lo, rs.v6_len, v6_gid))

    def _fill_dir(self, bank: int, routes: RouteSet) -> None:
        sz = self.cfg.sizes
        t24, t8 = build_v4(routes.v4_addr, routes.v4_len, routes.v4_gid, chunk_base=bank * sz.v4_chunks)
        n8 = len(t8) // CHUNK
        if n8 > sz.v4_chunks:
            raise RouteError(f"IPv4 table needs {n8} chunks for /25../32 routes; sizes.v4_chunks "
                             f"is {sz.v4_chunks}")
        bw = self.v6_bank_words
        try:   # written straight into the idle bank (traffic reads the other one)
            w6 = build_v6(*routes.v6_arrays, base=bank * bw, out=self._mm["rt_v6"][1][bank * bw:(bank + 1) * bw])
        except RouteError as e:
            raise RouteError(f"{e} (sizes.v6_chunks is {sz.v6_chunks})") from None
        self._mm["rt_v4_tbl24"][1][bank * V4_TBL24:(bank + 1) * V4_TBL24] = t24
        base = bank * sz.v4_chunks * CHUNK
        self._mm["rt_v4_tbl8"][1][base:base + len(t8)] = t8
        self.table_stats = {"v4_chunks": n8,
                            "v6_chunks": -(-(len(w6) - V6_HDR_WORDS - (1 << V6_LEVELS[0])) // CHUNK)}

    def _fill_trie(self, bank: int, routes: RouteSet) -> None:
        """The idle trie gets exactly `routes`: stale keys deleted, new or changed ones written,
        one syscall per element (LPM tries have no batch update), unchanged ones left alone — a
        runtime add at 1M routes writes one element, not a million."""
        for fi, (fam, name, kt, width) in enumerate(((4, f"rt_trie4_{bank}", RtTrie4Key, 4),
                                                    (6, f"rt_trie6_{bank}", RtTrie6Key, 16))):
            m = self.obj.map(name)
            fd = m.fd
            if fam == 4:
                pairs = {(int(a), int(n)): int(g) for a, n, g in
                         zip(routes.v4_addr.tolist(), routes.v4_len.tolist(), routes.v4_gid.tolist())}
            else:
                pairs = routes.v6_dict()
            old = self._trie_state[bank][fi]
            if old is None:  # unknown after a failure: wipe the map
                for k in list(m.raw_keys()):
                    m.delete(k)
                old = {}
            self._trie_state[bank][fi] = None
            key, val = kt(), u32()
            for a, n in old.keys() - pairs.keys():
                key.prefixlen = n
                key.addr[:] = list(a.to_bytes(width, "big"))
                L.bpf_map_delete_elem(fd, ctypes.byref(key))
            changed = [(k, g) for k, g in pairs.items() if old.get(k) != g]
            if fam == 4 and changed:
                # keys built in one numpy buffer: prefixlen (LE u32) + address (BE u32)
                arr = np.array([k for k, _ in changed], dtype=np.uint64)
                buf = np.empty((len(arr), 2), np.uint32)
                buf[:, 0] = arr[:, 1]
                buf[:, 1] = arr[:, 0].astype(np.uint32).byteswap()
                vals = np.array([g for _, g in changed], np.uint32)
                kp, vp = buf.ctypes.data, vals.ctypes.data
                for i in range(len(arr)):
                    rc = L.bpf_map_update_elem(fd, kp + 8 * i, vp + 4 * i, 0)
                    if rc < 0:
                        raise RouteError(f"LPM trie update failed (errno {-rc}): sizes.trie_entries "
                                         f"is {self.cfg.sizes.trie_entries}")
            else:
                for (a, n), g in changed:
                    key.prefixlen = n
                    key.addr[:] = list(a.to_bytes(width, "big"))
                    val.value = g
                    rc = L.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(val), 0)
                    if rc < 0:
                        raise RouteError(f"LPM trie update failed (errno {-rc}): sizes.trie_entries "
                                         f"is {self.cfg.sizes.trie_entries}")
            self._trie_state[bank][fi] = pairs

    def _write_groups(self, bank: int) -> None:
        m = self.obj.map("rt_groups").typed(u32, RtGroup)
        gids = list(self._groups)
        m.batch_update([bank * RT_GROUPS + g for g in gids], [self._groups[g] for g in gids])

    def add_route(self, prefix: str, target: str) -> int:
        """Add or change one route; the table is rebuilt into the idle bank and flipped."""
        fam, a, n = parse_prefix(prefix)
        try:
            gid = self.resolve_target(target, fam)
        except ValueError as e:
            raise RouteError(f"route {prefix}: {e}") from None
        u = self.user
        if fam == 4:
            hit = (u.v4_addr == a) & (u.v4_len == n)
            if hit.any():
                g = u.v4_gid.copy()
                g[hit] = gid
                new = u.with_v4(u.v4_addr, u.v4_len, g)
            else:
                new = u.with_v4(np.append(u.v4_addr, np.uint32(a)), np.append(u.v4_len, np.uint8(n)),
                                np.append(u.v4_gid, np.uint32(gid)))
        else:
            keep = ~u.v6_match(a, n)
            new = u.with_v6(np.append(u.v6_hi[keep], np.uint64(a >> 64)),
                            np.append(u.v6_lo[keep], np.uint64(a & M64)),
                            np.append(u.v6_len[keep], np.uint8(n)), np.append(u.v6_gid[keep], np.uint32(gid)))
        self.publish(new)
        return gid

    def delete_route(self, prefix: str) -> bool:
        fam, a, n = parse_prefix(prefix)
        u = self.user
        if fam == 4:
            keep = ~((u.v4_addr == a) & (u.v4_len == n))
            gone = not keep.all()
            new = u.with_v4(u.v4_addr[keep], u.v4_len[keep], u.v4_gid[keep])
        else:
            keep = ~u.v6_match(a, n)
            gone = not keep.all()
            new = u.with_v6(*(x[keep] for x in u.v6_arrays))
        if gone:
            self.publish(new)
        return gone

    def replace_routes(self, routes: RouteSet | str | Path) -> None:
        """Bulk replace (a RouteSet or a route file): validated first, then one bank flip."""
        if not isinstance(routes, RouteSet):
            routes = read_route_file(routes, self._resolver())   # checked while parsed
        else:
            check_v4(routes.v4_addr, routes.v4_len)
            check_v6(routes.v6_hi, routes.v6_lo, routes.v6_len)
        self.publish(routes)

    # ---- datapath queries ---------------------------------------------------------------------
    def lookup(self, addrs) -> list[int]:
        """Group ids for addresses, computed by the loaded program's own lookup (xdp_lookup_batch)."""
        addrs = [int(ipaddress.ip_address(a)) if isinstance(a, str) else a for a in addrs]
        fams = [4 if isinstance(a, int) and a < (1 << 32) else 6 for a in addrs]
        return self.lookup_raw(addrs, fams)

    def lookup_raw(self, addrs, fams) -> list[int]:
        m = self.obj.map("rt_probes")
        prog = self.obj.program("xdp_lookup_batch")
        out: list[int] = []
        stride = ctypes.sizeof(RtProbe)
        size = (stride * RT_PROBES + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        mm = mmap.mmap(m.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            for s in range(0, len(addrs), RT_PROBES):
                part_a, part_f = addrs[s:s + RT_PROBES], fams[s:s + RT_PROBES]
                buf = bytearray(stride * len(part_a))
                for i, (a, f) in enumerate(zip(part_a, part_f)):
                    o = i * stride
                    buf[o:o + (4 if f == 4 else 16)] = a.to_bytes(4 if f == 4 else 16, "big")
                    buf[o + 16] = f
                mm[:len(buf)] = bytes(buf)
                r = prog.test_run(len(part_a).to_bytes(4, "little") + bytes(60))
                if r.retval != 2:
                    raise RuntimeError(f"xdp_lookup_batch returned {r.retval}")
                res = np.frombuffer(mm[:len(buf)], np.uint32).reshape(-1, stride // 4)[:, 5]
                out.extend(int(x) for x in res)
        finally:
            mm.close()
        return out

    def run(self, frame: bytes, ingress: str | int | None = None):
        """One frame through xdp_router with test_run -> (verdict, output bytes)."""
        if ingress is None:
            ifindex = self.ports[0].ifindex
        elif isinstance(ingress, str):
            ifindex = self.by_name[ingress].ifindex
        else:
            ifindex = ingress
        r = self.obj.program(PROGRAM).test_run(frame, ingress_ifindex=ifindex)
        return r.retval, bytes(r.data_out)

    def _percpu_sum(self, name: str, ctype, key: int):
        vals = self.obj.map(name).typed(u32, ctype).lookup_percpu(key)
        out = ctype()
        for f, *_ in ctype._fields_:
            setattr(out, f, sum(getattr(v, f) for v in vals))
        return out

    def port_stats(self) -> dict[str, dict[str, int]]:
        return {p.name: {f: getattr(s, f) for f, *_ in RtPortStats._fields_}
                for p in self.ports for s in [self._percpu_sum("rt_port_stats", RtPortStats, p.idx)]}

    def class_stats(self) -> dict[str, dict[str, int]]:
        return {c: {"packets": s.packets, "bytes": s.bytes} for i, c in enumerate(CLASSES)
                for s in [self._percpu_sum("rt_class_stats", RtClassStats, i)]}

    def stats(self):
        from nf.datapath import read_stats
        return read_stats(self.obj, "rt_stats")

    def reason_counts(self) -> dict[str, int]:
        st = self.stats()
        d = st.as_dict() if hasattr(st, "as_dict") else {}
        return d

    # ---- attach / lifetime --------------------------------------------------------------------
    def attach(self, mode: XdpMode = XdpMode.AUTO) -> None:
        """This process's program on every port (unpinned links, held here)."""
        prog = self.obj.program(PROGRAM)
        with netns.enter(self.cfg.netns):
            for p in self.ports:
                self.links.append(prog.attach_xdp(p.ifindex, mode))

    def detach(self) -> None:
        """Detach every port (the program and maps stay loaded: attach() again at will)."""
        for link in self.links:
            try:
                link.detach()
            except Exception:  # noqa: BLE001 - the interface may already be gone
                pass
        self.links.clear()

    def close(self) -> None:
        halt = getattr(self, "_stop_sync", None)
        if halt is not None:
            halt()
            self._stop_sync = None
        self.detach()
        maps = [mm for mm, _ in self._mm.values()]
        self._mm.clear()          # drops the numpy views, so the mmaps can close
        for mm in maps:
            try:
                mm.close()
            except BufferError:   # a caller still holds a view: the GC closes it later
                pass
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self) -> "Router":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


# ---- the router as a deployable NF ---------------------------------------------------------------
def routes_rows(r, op: str = "list", prefix: str | None = None, target: str | None = None,
                file: str | None = None, limit: int | None = None, progress=None) -> list[dict]:
    """`nf routes`: list | add PREFIX TARGET | del PREFIX | replace FILE (built into the idle
    bank, one flip). ``progress(step, total, what)`` is told each stage of a replace."""
    if op == "add":
        r.add_route(prefix, target)
        return [{"added": prefix, "target": r.target_text(r.resolve_target(target))}]
    if op == "del":
        if not r.delete_route(prefix):
            raise KeyError(f"{r.name}: no route {prefix}")
        return [{"deleted": prefix}]
    if op == "replace":
        say = progress or (lambda *a: None)
        say(0, 3, f"parsing {file}")
        rs = read_route_file(file, r._resolver())
        say(1, 3, f"building {len(rs.v4_addr) + rs.n6} routes into the idle bank")
        check_v4(rs.v4_addr, rs.v4_len)
        r.publish(rs)                       # one flip; the saved state follows
        say(3, 3, "flipped")
        return [{"replaced": str(file), "ipv4": int(len(rs.v4_addr)), "ipv6": rs.n6,
                 "bank": r.bank}]
    return [{"prefix": p, "target": t} for p, t in r.route_list(limit)]


def neigh_rows(r, op: str = "list", address: str | None = None, mac: str | None = None,
               dev: str | None = None) -> list[dict]:
    """`nf neigh`: list | add ADDRESS MAC [dev] (static) | del ADDRESS [dev]."""
    if op == "add":
        name = dev or port_of_gateway(r.cfg, address)
        if name not in r.by_name:
            raise ValueError(f"neighbour {address}: on no connected subnet of a router port"
                             if dev is None else f"unknown interface {dev!r}")
        r.set_neighbour(r.by_name[name].idx, address, mac, static=True)
        return [{"added": address, "mac": mac.lower(), "port": name}]
    if op == "del":
        if not r.delete_neighbour(address, dev):
            raise KeyError(f"{r.name}: no neighbour {address}")
        return [{"deleted": address}]
    return [{"port": r.ports[p].name if p < len(r.ports) else f"#{p}", "address": a, "mac": m,
             "static": bool(f & NEIGH_STATIC)} for (p, a), (m, f) in sorted(r.neighbours().items())]


class RouterKind(Kind):
    name = "router"
    summary = "LPM router (IPv4+IPv6, ECMP, ICMP errors in XDP)"
    config = RouterConfig
    objects = one_object(OBJECT, OBJECT_CHAIN)    # the variant is one rodata flag (RT_F_PURE)
    programs = dict.fromkeys(VARIANTS, PROGRAM)
    exit_stats = "rt_stats"
    reasons = REASONS
    extra_pins = dict.fromkeys(VARIANTS, {"xdp_lookup_batch": "lookup"})
    verbs = {"routes": routes_rows, "neigh": neigh_rows}
    interfaces_in_chain = True           # ports carry addresses: in a chain, exactly the chain's

    def load_config(self, path):
        return load_router_config(path)

    def validate(self, data, source="<config>"):
        from nf.config.router import validate_router_config
        return validate_router_config(data, source)

    def interface_fields(self, cfg):
        return [(f"interfaces[{i}].name", itf.name) for i, itf in enumerate(cfg.interfaces)
                if itf.ifindex is None]

    def check(self, cfg) -> None:
        super().check(cfg)
        Router(cfg).close()            # every route target resolves (RouteError names the route)

    def resolve(self, cfg) -> str:
        """pure, or the module's CRC-32C when it is loaded: enetstl, or auto where the variant
        table measured it faster (nf/variants.py)."""
        if cfg.variant == "auto":
            return variants.auto(self.name, cfg, module_present())
        return "enetstl" if cfg.variant == "enetstl" and module_present() else "pure"

    def configure(self, obj, cfg) -> None:
        sz = cfg.sizes
        mode = MODE[cfg.mode]
        flags = (F_ICMP_ERRORS if cfg.icmp.errors else 0) | (F_ECHO if cfg.icmp.echo else 0) | \
            (F_LEARN if cfg.learn_neighbours else 0) | (F_PURE if cfg.variant == "pure" else 0) | \
            (F_UNREACH_ADMIN if cfg.icmp.unreachable_routes == "prohibit" else 0)
        obj.set_rodata("cfg", RtCfg(mode=mode, flags=flags, icmp_rate=cfg.icmp.rate,
                                    icmp_burst=cfg.icmp.burst, ecmp_seed=cfg.ecmp_seed,
                                    v6_bank_words=v6_bank_words(cfg),
                                    local4_filter=sum({1 << (b >> 2) for b in local4(cfg)})))
        dir_ = mode == MODE["dir"]
        # unused tables shrink to one element (the verifier removed the code using them)
        obj.map("rt_v4_tbl24").set_max_entries(V4_TBL24 if dir_ else 1)
        obj.map("rt_v4_tbl8").set_max_entries(sz.v4_chunks * CHUNK if dir_ else 1)
        obj.map("rt_v6").set_value_size(8 * v6_bank_words(cfg))
        for n in ("rt_trie4_0", "rt_trie4_1", "rt_trie6_0", "rt_trie6_1"):
            obj.map(n).set_max_entries(sz.trie_entries if mode == MODE["trie"] else 1)
        obj.map("rt_neigh").set_max_entries(sz.neighbours)

    def controller(self, cfg, obj, pin_dir):
        r = Router(cfg)
        r.obj, r.pin_dir = obj, pin_dir
        return r

    def fill(self, r) -> dict:
        return r.fill()

    def open(self, cfg, pin_dir):
        return Router.open_pinned(cfg, Path(pin_dir).name)

    def runtime(self, r, old, new) -> list[str]:
        return router_runtime(r, old, new)

    def stats(self, r) -> dict[str, dict[str, int]]:
        return r.counters()

    # ---- after `nf up`: the agent resolves the next hops no static neighbour names ------------
    # XDP learns only ARP replies / NAs; the kernel sends requests only for the frames it
    # forwards. Every NEIGH_POLL_S the agent makes the kernel resolve the datapath's misses and
    # mirrors its usable entries (Router.poll_neighbours), in the router's netns.
    tick_what = "neighbour sync"
    agent_does = "resolves router next hops that are not static neighbours"
    without_agent = "router next hops that are not static neighbours stay unresolved"

    def __init__(self):
        super().__init__()
        # per instance, in the agent's process: last poll, misses still being resolved
        self._polled: dict[str, float] = {}
        self._asked: dict[str, list[str]] = {}

    def due(self, rec, cfg) -> float:
        """When `nf agent` polls this router's neighbours next (unix time)."""
        return self._polled.get(rec.name, 0.0) + NEIGH_POLL_S

    def tick(self, r) -> str:
        """One poll: the datapath's misses handed to the kernel, its usable entries mirrored.
        A line only when something changed (the agent polls every NEIGH_POLL_S)."""
        name = Path(r.pin_dir).name
        self._polled[name] = time.time()
        with netns.enter(r.cfg.netns):
            n = r.poll_neighbours()
        asked = sorted(f"{a} ({r.ports[p].name})" for p, a in r.misses() if p < len(r.ports))
        said = self._asked.get(name) == asked
        self._asked[name] = asked
        return ", ".join(x for x in (f"{n} neighbour(s) mirrored from the kernel" if n else "",
                                     "" if said or not asked else "resolving " + ", ".join(asked))
                         if x)

    def refill(self, r, cfg) -> list[str]:
        return router_refill(r, cfg)


def router_refill(r, cfg) -> list[str]:
    """After `nf routes` / `nf neigh`: routes back to exactly the config's (its routes and its
    route file, one new table, one flip) and static neighbours to the config's (learned ones
    stay)."""
    r.cfg = check(cfg)
    r._gnames = {g.name: g for g in cfg.groups}
    static = {(p, a) for (p, a), (_, f) in r.neighbours().items() if f & NEIGH_STATIC}
    r._write_neighbours()
    want = {(r.by_name[port_of_gateway(cfg, n.address, n.dev)].idx,
             str(ipaddress.ip_address(n.address))) for n in cfg.neighbours}
    done = [f"static neighbours: the config's {len(want)}"]
    if cfg.mode != "fib":
        user = parse_route_lines([f"{x.prefix} {x.target()}" for x in cfg.routes], r._resolver(),
                                 "<config routes>")
        if cfg.route_file:
            user = user.merged(read_route_file(cfg.route_file, r._resolver()))
        r.publish(user)
        done.insert(0, f"routes: the config's {len(user.v4_addr) + len(user.v6)} (one flip)")
    for p, a in sorted(static - want):
        r.delete_neighbour(a, r.ports[p].name)
        done.append(f"neighbour {a} removed")
    return done


def router_runtime(r, old, new) -> list[str]:
    """Neighbours and routes of an open router controller ``r`` (opened with ``new``) moved from
    ``old`` to ``new``: new neighbours first (a new next hop has its MAC before a route uses it),
    then every config route in one new table and one bank flip (routes added at runtime with
    `nf routes add` stay unless the config names their prefix), then removed neighbours."""
    # targets resolve against the new config's groups (its interfaces are the old ones: a
    # change there is not a runtime change)
    r.cfg = check(new)
    r._gnames = {g.name: g for g in new.groups}
    done = []
    key = lambda n: (n.address, n.dev)   # noqa: E731
    o = {key(n): n.mac.lower() for n in old.neighbours}
    nn = {key(n): n.mac.lower() for n in new.neighbours}
    for (addr, dev), mac in nn.items():
        if o.get((addr, dev)) != mac:
            port = port_of_gateway(new, addr, dev)
            r.set_neighbour(r.by_name[port].idx, addr, mac, static=True)
            done.append(f"neighbour {addr} -> {mac} ({port})")
    ro = {x.prefix: x.target() for x in old.routes}
    rn = {x.prefix: x.target() for x in new.routes}
    if ro != rn or old.groups != new.groups:
        u = r.user
        gone4, gone6 = [], set()
        for p in ro:
            fam, a, n = parse_prefix(p)
            if fam == 4:
                gone4.append((a << 6) | n)
            else:
                gone6.add((a, n))
        k4 = (u.v4_addr.astype(np.uint64) << np.uint64(6)) | u.v4_len.astype(np.uint64)
        keep = ~np.isin(k4, np.array(gone4, np.uint64))
        keep6 = np.ones(u.n6, bool)
        for a, n in gone6:
            keep6 &= ~u.v6_match(a, n)
        base = RouteSet(u.v4_addr[keep], u.v4_len[keep], u.v4_gid[keep],
                        tuple(x[keep6] for x in u.v6_arrays))
        add = parse_route_lines([f"{p} {t}" for p, t in rn.items()], r._resolver(), "<config routes>")
        r.publish(base.merged(add))           # one flip: the old table or the new one
        for p in ro.keys() - rn.keys():
            done.append(f"route {p} removed")
        for p, t in rn.items():
            if ro.get(p) != t:
                done.append(f"route {p} {t}")
        if old.groups != new.groups:
            done.append("groups changed (routes using them re-resolved)")
    for (addr, dev) in o.keys() - nn.keys():
        r.delete_neighbour(addr, dev)
        done.append(f"neighbour {addr} removed")
    return done


KIND = RouterKind()
