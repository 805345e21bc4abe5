"""A veth lab: N hosts, each its own netns with one veth to a central "dut" netns.

    with Lab(LabSpec.switch(3)) as lab:          # or Lab.from_dict({...}) / LabSpec.router(2)
        h1, h2 = lab.host("h1"), lab.host("h2")
        with lab.capture(["h2"]) as cap:
            lab.send("h1", [frame])
            got = cap.wait(count=1, timeout=1)[lab.tap("h2")]
        with lab.enter("dut"):
            link = prog.attach_xdp(lab.port_ifindex("h1"))   # acts in the dut netns

Every lab gets unique netns names (`nfl<pid>x<seq><rand>-<host>`), so parallel labs never
collide, and is torn down by the context manager, by a finalizer (garbage collection / interpreter
exit), and by the next lab made after a killed process (stale names whose pid is dead).

Facts that shape it (ARCHITECTURE.md §4):
- veth rule: a frame redirected by native XDP into a veth is silently dropped unless the veth's
  peer has GRO on or a native XDP program. Host ends get GRO on (and dut ports too, by default),
  so frames an NF redirects out of a dut port always reach the host.
- IPv6 is disabled on every interface unless the spec asks for it, so no autoconf/ND/MLD frames
  reach XDP programs or captures; when enabled, DAD/RA/RS are off so addresses work at once, and
  the kernels' unsolicited MLD reports (two per group, by default spread over up to 1 s: measured
  up to 0.7 s after the build) all leave within the build (one jiffy apart).
- tx VLAN offload is off on both veth ends, so tags stay in the frame data that XDP sees.
"""
from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import secrets
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pyroute2 import IPRoute

from nf.net import iface as _iface
from nf.net import netns as _netns
from nf.net.frames import Capture, send as _send

_IFNAME = r"^[A-Za-z0-9_.-]{1,15}$"
_HOSTNAME = r"^[A-Za-z0-9_]{1,32}$"
_MAC = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"
LAB_PREFIX = "nfl"
_NAME_RE = re.compile(rf"^{LAB_PREFIX}(\d+)x[0-9a-z]+-")

VLAN_OFFLOADS_OFF = {"tx-vlan-hw-insert": False, "tx-vlan-stag-hw-insert": False}


def host_mac(i: int) -> str:
    """Deterministic MAC of host number i (1-based): 02:00:00:00:HH:LL (locally administered)."""
    return f"02:00:00:00:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


def port_mac(i: int) -> str:
    """Deterministic MAC of the dut port facing host i: 02:00:00:01:HH:LL."""
    return f"02:00:00:01:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


class HostSpec(BaseModel):
    """One host and its link to the dut (host end `ifname`, dut end `port`)."""
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_HOSTNAME)
    ifname: str = Field("eth0", pattern=_IFNAME)
    port: str | None = Field(None, pattern=_IFNAME, description="dut-side ifname; default p<i>")
    mac: str | None = Field(None, pattern=_MAC, description="default host_mac(i)")
    port_mac: str | None = Field(None, pattern=_MAC, description="default port_mac(i)")
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    port_addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = []
    gateways: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = Field(
        [], description="default routes of the host (at most one per family)")
    ipv6: bool | None = Field(None, description="None: the lab's setting")

    @field_validator("gateways")
    @classmethod
    def _one_per_family(cls, v):
        fams = [g.version for g in v]
        if len(fams) != len(set(fams)):
            raise ValueError("at most one gateway per address family")
        return v


class LabSpec(BaseModel):
    """A lab: hosts linked to one dut netns. Fed by dicts/YAML (configs/lab.yaml)."""
    model_config = ConfigDict(extra="forbid")

    hosts: list[HostSpec] = Field(min_length=1)
    dut: str = Field("dut", pattern=_HOSTNAME)
    ipv6: bool = False
    host_gro: bool = Field(True, description="GRO on host ends (the veth rule); keep on")
    port_gro: bool = Field(True, description="GRO on dut ports (frames redirected into hosts' veths)")
    mtu: int = Field(1500, ge=68, le=65535)
    ip_forward: bool = Field(False, description="Linux forwarding in the dut (baselines)")
    queues: int = Field(1, ge=1, le=16, description="tx and rx queues of every veth end: 2 lets "
                        "two CPUs send at once, each into its own queue and NAPI")

    @model_validator(mode="after")
    def _unique(self):
        names = [h.name for h in self.hosts]
        if len(names) != len(set(names)):
            raise ValueError(f"host names must be unique: {names}")
        if self.dut in names:
            raise ValueError(f"dut name {self.dut!r} clashes with a host name")
        ports = [h.port or f"p{i}" for i, h in enumerate(self.hosts, 1)]
        if len(ports) != len(set(ports)):
            raise ValueError(f"dut port names must be unique: {ports}")
        return self

    @classmethod
    def from_yaml(cls, path) -> "LabSpec":
        """Read a lab description from YAML (nf.config's channel: errors name the field path)."""
        from nf.config import load
        return load(path, cls)

    @classmethod
    def switch(cls, n: int, ipv6: bool = False, **kw) -> "LabSpec":
        """n hosts in one subnet: 10.0.0.i/24 (+ fd00::i/64 with ipv6); dut ports unaddressed."""
        _check_n(n)
        hosts = []
        for i in range(1, n + 1):
            addrs = [f"10.0.0.{i}/24"] + ([f"fd00::{i:x}/64"] if ipv6 else [])
            hosts.append(HostSpec(name=f"h{i}", addresses=addrs))
        return cls(hosts=hosts, ipv6=ipv6, **kw)

    @classmethod
    def router(cls, n: int, ipv6: bool = False, **kw) -> "LabSpec":
        """Host i in its own subnet: 10.0.i.2/24 via dut port 10.0.i.1 (+ fd00:i::2/64 via ::1)."""
        _check_n(n)
        hosts = []
        for i in range(1, n + 1):
            a, pa, gw = [f"10.0.{i}.2/24"], [f"10.0.{i}.1/24"], [f"10.0.{i}.1"]
            if ipv6:
                a.append(f"fd00:{i:x}::2/64")
                pa.append(f"fd00:{i:x}::1/64")
                gw.append(f"fd00:{i:x}::1")
            hosts.append(HostSpec(name=f"h{i}", addresses=a, port_addresses=pa, gateways=gw))
        return cls(hosts=hosts, ipv6=ipv6, **kw)


def _check_n(n: int) -> None:
    if not isinstance(n, int) or not 1 <= n <= 250:
        raise ValueError(f"a lab has 1..250 hosts, not {n!r}")


@dataclass(frozen=True)
class Host:
    name: str
    netns: str
    ifname: str
    ifindex: int
    mac: str
    addresses: tuple[str, ...]
    port: str            # dut-side interface name
    port_ifindex: int    # ifindex inside the dut netns
    port_mac: str
    port_addresses: tuple[str, ...]
    ipv6: bool

    @property
    def ip4(self) -> str | None:
        """First IPv4 address (without prefix length)."""
        return next((a.split("/")[0] for a in self.addresses if ":" not in a), None)

    @property
    def ip6(self) -> str | None:
        return next((a.split("/")[0] for a in self.addresses if ":" in a), None)


_seq = itertools.count(1)


def cleanup_stale() -> list[str]:
    """Remove lab namespaces left by processes that died without cleaning up (e.g. SIGKILL)."""
    return _netns.remove_orphans(_NAME_RE)


def _destroy(names: list[str]) -> None:
    for n in names:
        with contextlib.suppress(OSError):
            _netns.remove(n)


class Lab:
    """A running lab (see module doc). Build with Lab(spec | dict | n), use as a context manager."""

    def __init__(self, spec: "LabSpec | dict | int | str | os.PathLike", name: str | None = None):
        if isinstance(spec, (str, os.PathLike)):
            spec = LabSpec.from_yaml(spec)
        elif isinstance(spec, int):
            spec = LabSpec.switch(spec)
        elif isinstance(spec, dict):
            spec = LabSpec.model_validate(spec)
        elif not isinstance(spec, LabSpec):
            raise TypeError(f"Lab needs a LabSpec, a dict, a YAML path or a host count, not {type(spec).__name__}")
        self.spec = spec
        self.name = name or f"{LAB_PREFIX}{os.getpid()}x{next(_seq)}{secrets.token_hex(2)}"
        if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", self.name):
            raise ValueError(f"bad lab name {self.name!r}")
        self._names: list[str] = []  # netns created so far, for cleanup
        self._finalizer = weakref.finalize(self, _destroy, self._names)
        self.hosts: dict[str, Host] = {}
        cleanup_stale()
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise

    @classmethod
    def from_dict(cls, d: dict[str, Any], name: str | None = None) -> "Lab":
        return cls(LabSpec.model_validate(d), name)

    # -- names ------------------------------------------------------------------------------
    @property
    def dut(self) -> str:
        """netns name of the dut."""
        return f"{self.name}-{self.spec.dut}"

    def ns(self, node: str) -> str:
        """netns name of a host (by host name) or of the dut ("dut" or the spec's dut name)."""
        if node in ("dut", self.spec.dut):
            return self.dut
        if node not in self.hosts:
            raise KeyError(f"lab {self.name} has no host {node!r} (hosts: {', '.join(self.hosts)})")
        return self.hosts[node].netns

    def host(self, name: str) -> Host:
        if name not in self.hosts:
            raise KeyError(f"lab {self.name} has no host {name!r} (hosts: {', '.join(self.hosts)})")
        return self.hosts[name]

    @property
    def ports(self) -> list[str]:
        return [h.port for h in self.hosts.values()]

    def port_ifindex(self, host: str) -> int:
        return self.host(host).port_ifindex

    def namespaces(self) -> list[str]:
        return list(self._names)

    # -- build / destroy --------------------------------------------------------------------
    def _new_ns(self, name: str) -> str:
        _netns.create(name)
        self._names.append(name)
        # Before any interface exists: new interfaces inherit "default".
        v6 = "0" if self.spec.ipv6 else "1"
        _iface.set_sysctl("net.ipv6.conf.default.disable_ipv6", v6, name)
        for k in ("accept_dad", "accept_ra", "autoconf", "router_solicitations"):
            _iface.set_sysctl(f"net.ipv6.conf.default.{k}", 0, name)
        for k in ("mldv1_unsolicited_report_interval", "mldv2_unsolicited_report_interval"):
            _iface.set_sysctl(f"net.ipv6.conf.default.{k}", 1, name)
        return name

    def _build(self) -> None:
        s = self.spec
        self._new_ns(self.dut)
        _iface.set_sysctl("net.ipv4.ip_forward", int(s.ip_forward), self.dut)
        if s.ip_forward:
            _iface.set_sysctl("net.ipv6.conf.all.forwarding", 1, self.dut)
        with _netns.enter(self.dut), IPRoute() as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        for i, hs in enumerate(s.hosts, 1):
            ns = self._new_ns(f"{self.name}-{hs.name}")
            v6 = s.ipv6 if hs.ipv6 is None else hs.ipv6
            port = hs.port or f"p{i}"
            mac, pmac = (hs.mac or host_mac(i)).lower(), (hs.port_mac or port_mac(i)).lower()
            fd = _netns.open_fd(ns)
            try:
                with _netns.enter(self.dut), IPRoute() as ipr:
                    # Created from the dut side with the peer born inside the host netns, so no
                    # name ever appears in the caller's netns (parallel labs cannot collide).
                    q = {"num_tx_queues": s.queues, "num_rx_queues": s.queues}
                    ipr.link("add", ifname=port, kind="veth", address=pmac, mtu=s.mtu, **q,
                             peer={"ifname": hs.ifname, "net_ns_fd": fd, "address": mac,
                                   "mtu": s.mtu, **q})
            finally:
                os.close(fd)
            for node_ns, ifn, addrs, gro in ((ns, hs.ifname, hs.addresses, s.host_gro),
                                             (self.dut, port, hs.port_addresses, s.port_gro)):
                _iface.set_sysctl(f"net.ipv6.conf.{ifn}.disable_ipv6", 0 if v6 else 1, node_ns)
                _iface.set_features(ifn, {**VLAN_OFFLOADS_OFF, "rx-gro": gro}, node_ns)
                if any(a.version == 6 for a in addrs) and not v6:
                    raise ValueError(f"host {hs.name}: IPv6 addresses given but ipv6 is off")
                with _netns.enter(node_ns), IPRoute() as ipr:
                    idx = ipr.link_lookup(ifname=ifn)[0]
                    for a in addrs:
                        ipr.addr("add", index=idx, address=str(a.ip), prefixlen=a.network.prefixlen)
                    ipr.link("set", index=idx, state="up")
                    if node_ns == ns:
                        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                        for gw in hs.gateways:
                            ipr.route("add", dst="default", gateway=str(gw),
                                      family=10 if gw.version == 6 else 2)
            self.hosts[hs.name] = Host(
                name=hs.name, netns=ns, ifname=hs.ifname,
                ifindex=_iface.ifindex(hs.ifname, ns), mac=mac,
                addresses=tuple(str(a) for a in hs.addresses), port=port,
                port_ifindex=_iface.ifindex(port, self.dut), port_mac=pmac,
                port_addresses=tuple(str(a) for a in hs.port_addresses), ipv6=v6)
        self._settle_ipv6()

    def _settle_ipv6(self, bound_s: float = 10.0) -> None:
        """Return once every IPv6 interface's kernel has sent its unsolicited MLD reports.
        The joins run from addrconf's workqueue after carrier comes up, so on a loaded machine
        they can start well after the build (seen: a report 1.5 s late in CI). Done = every
        IPv6 interface has a non-tentative link-local address (the solicited-node joins happen
        before) and each netns's MLD report counter has not moved for 100 ms."""
        nss = [self.dut] + [h.netns for h in self.hosts.values() if h.ipv6]
        if not self.spec.ipv6 and len(nss) == 1:
            return
        deadline, last, still_since = time.monotonic() + bound_s, None, None
        while True:
            now = time.monotonic()
            state = tuple(_mld_state(ns) for ns in nss)
            ready = all(ok for ok, _ in state)
            counts = tuple(c for _, c in state)
            if ready and counts == last:
                if now - still_since >= 0.1:
                    return
            else:
                still_since = now
            last = counts if ready else None
            if now > deadline:
                raise RuntimeError(f"lab {self.name}: IPv6 interfaces not settled within "
                                   f"{bound_s:.0f} s (link-local / MLD reports)")
            time.sleep(0.02)

    def destroy(self) -> None:
        """Remove every namespace of the lab (their veths go with them). Idempotent."""
        _destroy(self._names)
        self._names.clear()
        self.hosts = {}

    @property
    def alive(self) -> bool:
        return bool(self._names) and all(_netns.exists(n) for n in self._names)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    # -- working inside ---------------------------------------------------------------------
    def enter(self, node: str) -> contextlib.AbstractContextManager[None]:
        """Move the calling thread into a host's or the dut's netns for a block."""
        return _netns.enter(self.ns(node))

    def tap(self, node: str, ifname: str | None = None) -> tuple[str, str]:
        """(netns, ifname) of a host's interface, or of a dut port with node="dut", ifname=port."""
        if node in ("dut", self.spec.dut):
            if ifname is None:
                raise ValueError("a dut tap needs the port name")
            return (self.dut, ifname)
        h = self.host(node)
        return (h.netns, ifname or h.ifname)

    def send(self, host: str, frames: Iterable, **kw) -> int:
        """Transmit frames (bytes or scapy packets) from a host's interface; returns the count."""
        ns, ifn = self.tap(host)
        return _send(ns, ifn, frames, **kw)

    def capture(self, nodes: Iterable[str | tuple[str, str]], **kw) -> Capture:
        """A Capture on hosts' interfaces (by host name) or on (node, ifname) pairs."""
        taps = [self.tap(n) if isinstance(n, str) else self.tap(*n) for n in nodes]
        return Capture(taps, **kw)

    def set_features(self, node: str, ifname: str, features: dict[str, bool]) -> dict[str, bool]:
        return _iface.set_features(ifname, features, self.ns(node))

    def features(self, node: str, ifname: str) -> dict[str, bool]:
        return _iface.get_features(ifname, self.ns(node))


def _mld_state(ns: str) -> tuple[bool, int]:
    """(every up IPv6 interface but lo has a non-tentative link-local address, MLD reports sent)
    of one netns."""
    with _netns.enter(ns):
        with IPRoute() as ipr:
            v6_links = {l["index"] for l in ipr.get_links()
                        if l.get_attr("IFLA_IFNAME") != "lo" and l["flags"] & 1}
            done = set()
            for a in ipr.get_addr(family=10):
                if a["scope"] == 253 and not (a.get_attr("IFA_FLAGS") or a["flags"]) & 0x40:
                    done.add(a["index"])
            disabled = set()
            for i in v6_links:
                ifn = ipr.get_links(i)[0].get_attr("IFLA_IFNAME")
                try:
                    with open(f"/proc/sys/net/ipv6/conf/{ifn}/disable_ipv6") as f:
                        if f.read().strip() == "1":
                            disabled.add(i)
                except FileNotFoundError:
                    disabled.add(i)
        with open("/proc/thread-self/net/snmp6") as f:
            sent = sum(int(v) for k, v in (ln.split() for ln in f)
                       if k in ("Icmp6OutMLDv2Reports", "Icmp6OutGroupMembResponses"))
    return (v6_links - disabled) <= done, sent


@contextlib.contextmanager
def lab(spec: LabSpec | dict | int, name: str | None = None) -> Iterator[Lab]:
    with Lab(spec, name) as lb:
        yield lb
