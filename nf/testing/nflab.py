"""A throwaway netns lab built from the user's own config file, with the config deployed on it.

    with NfLab("router.yaml") as lab:                       # one host per interface the config names
        rt0 = lab.port("rt0")
        rt0.send(Ether(src=rt0.mac, dst=rt0.dut_mac) / IP(src=rt0.ip4, dst="10.9.1.1") / UDP())
        lab.expect("rt1", Fields({"IP.ttl": 63}))           # or exact frames (bytes / scapy)
        lab.expect_nothing("rt2")
        before = lab.counters(); ...; lab.assert_counters(before, {"rt1.tx_packets": 1})

How the lab follows the config (nothing else is needed):
- one host namespace per interface the config names (a switch's ports, a router's interfaces,
  a sketch's / flow table's interfaces and redirect targets, a chain's), linked by a veth to a
  "dut" namespace where the interface has the config's name; the config is deployed there
  through the same path as `nf up` (its ``netns`` and instance name replaced: see
  nf/testing/deployment.py);
- router: each interface gets the config's MAC and addresses; its host gets an address in each
  of the interface's subnets (the config's next hop / neighbour there if it names one, with the
  neighbour's MAC, else the subnet's first free address) and the router as its gateway; before
  the test starts each host resolves the router's addresses (ARP, ND) as a real host does, so
  the router has learned the hosts as Linux would have;
- switch: hosts are unaddressed (their stacks stay silent, so every frame seen is one the
  switch sent); a trunk port's host sends and receives tagged frames as written (the host
  kernel has no 8021q; the lab keeps tags in the frame data: no VLAN offload);
- host MACs are ``02:00:00:00:00:NN`` (NN = the interface's position in the config, 1-based)
  unless a router neighbour gives one or the config uses that MAC (then the next free one); every host end runs a pass-through XDP program (a frame an
  NF sends back with XDP_TX reaches the host at once, and the veth rule is met).

Frames arriving at the hosts are captured from the start. ``expect`` takes the next frames of a
port in arrival order; ``expect_nothing`` fails on any frame not yet taken. IPv6 MLD frames the
lab's kernels send by themselves are ignored (``ignore=None`` keeps them).

Teardown (``close``, the context manager, a pytest finalizer) removes the deployment, then the
namespaces. While a lab is up, SIGTERM and SIGHUP raise KeyboardInterrupt so the teardown runs;
a SIGKILLed process leaves pins and namespaces that the next lab (or `nf down`) removes.
"""
from __future__ import annotations

import contextlib
import difflib
import ipaddress
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from nf.testing import deployment
from nf.testing.expect import Fields, is_mld, problems, summary

DEFAULT_TIMEOUT = 1.0     # expect: how long the frames may take
DEFAULT_QUIET = 0.2       # expect_nothing: how long nothing must arrive


class ExpectationError(AssertionError):
    """A check on the lab failed: frames missing, different or unexpected, a counter off."""


@dataclass
class Port:
    """One interface the config names, seen from the host behind it."""
    name: str                       # the config's interface name (the NF side, in the dut netns)
    host: str                       # lab host name (its netns: lab.lab.ns(host))
    mac: str                        # the host's MAC: the source of the frames it sends
    dut_mac: str                    # the NF interface's MAC
    ifindex: int                    # the NF interface's ifindex in the dut netns
    ip4: str | None = None          # the host's addresses (router labs)
    ip6: str | None = None
    dut_ip4: str | None = None      # the NF interface's addresses (router)
    dut_ip6: str | None = None
    vlan: int | None = None         # switch: access VLAN, or a trunk's native VLAN
    vlans: tuple[int, ...] = ()     # switch trunk: tagged VLANs
    _lab: "NfLab | None" = field(default=None, repr=False, compare=False)

    VARS = ("name", "mac", "dut_mac", "ifindex", "ip4", "ip6", "dut_ip4", "dut_ip6", "vlan")

    def send(self, frames: Any) -> int:
        """Send frames (bytes, scapy packets, or a list of them) from this port's host."""
        return self._lab.send(self, frames)

    def vars(self) -> dict[str, Any]:
        """The values a case file's scapy expression reads as ``<port>.<name>``."""
        return {k: getattr(self, k) for k in self.VARS}


# ---- the lab a config needs -------------------------------------------------------------------
@dataclass
class _Plan:
    port: str
    mac: str | None = None
    port_mac: str | None = None
    addresses: list[str] = field(default_factory=list)
    port_addresses: list[str] = field(default_factory=list)
    gateways: list[str] = field(default_factory=list)
    vlan: int | None = None
    vlans: tuple[int, ...] = ()


def _router_plans(cfg, plans: dict[str, _Plan]) -> None:
    """Router interfaces: the config's MAC and addresses; a host in each subnet."""
    neigh = {ipaddress.ip_address(n.address): n.mac.lower() for n in cfg.neighbours}
    hops = list(neigh) + [ipaddress.ip_address(a) for g in cfg.groups for a in g.via] \
        + [ipaddress.ip_address(a) for r in cfg.routes for a in r.via]
    for itf in cfg.interfaces:
        p = plans[itf.name]
        p.port_mac = itf.mac.lower() if itf.mac else None
        p.port_addresses = list(itf.addresses)
        fams = set()
        for a in itf.addresses:
            ia = ipaddress.ip_interface(a)
            net = ia.network
            pick = next((h for h in hops if h.version == ia.version and h in net and h != ia.ip), None)
            if pick is None:
                pick = next((h for h in _first_hosts(net) if h != ia.ip), None)
            if pick is None:
                continue                 # a /32 or /128: no room for a host
            p.addresses.append(f"{pick}/{net.prefixlen}")
            if p.mac is None and pick in neigh:
                p.mac = neigh[pick]
            if ia.version not in fams:
                fams.add(ia.version)
                p.gateways.append(str(ia.ip))


def _first_hosts(net, n: int = 3):
    it = net.hosts() if net.num_addresses > 2 else iter(net)
    for i, h in enumerate(it):
        if i == n:
            return
        yield h


def plan(kind, cfg) -> list[_Plan]:
    """One host per interface the config names, with what it needs (see the module doc)."""
    plans = {n: _Plan(n) for n in deployment.interfaces(kind, cfg)}
    for k, m in deployment.members(kind, cfg):
        if k.name == "router":
            _router_plans(m, plans)
        elif k.name == "l2_switch":
            for pt in m.ports:
                plans[pt.name].vlan = pt.pvid or None
                plans[pt.name].vlans = tuple(sorted(pt.tagged_vlans()))
    return list(plans.values())


def lab_spec(plans: list[_Plan]):
    from nf.net.lab import HostSpec, LabSpec, host_mac, port_mac
    # Generated MACs never repeat one the config gives (configs/router.yaml's rt0 has the
    # first host's default): a host sharing its router's MAC is no network anyone runs.
    taken = {m.lower() for p in plans for m in (p.mac, p.port_mac) if m}

    def free(given: str | None, gen, i: int) -> str:
        while given is None and gen(i) in taken:
            i += len(plans)
        m = given or gen(i)
        taken.add(m)
        return m
    macs = [(free(p.mac, host_mac, i), free(p.port_mac, port_mac, i)) for i, p in enumerate(plans, 1)]
    hosts = [HostSpec(name=f"h{i}", port=p.port, mac=hm, port_mac=pm,
                      addresses=p.addresses, port_addresses=p.port_addresses, gateways=p.gateways)
             for i, (p, (hm, pm)) in enumerate(zip(plans, macs), 1)]
    v6 = any(":" in a for p in plans for a in p.addresses + p.port_addresses)
    return LabSpec(hosts=hosts, ipv6=v6)


# ---- signals: teardown also on SIGTERM / SIGHUP -----------------------------------------------
_sig_lock = threading.Lock()
_sig_users = 0
_sig_saved: dict[int, Any] = {}


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _hold_signals() -> bool:
    global _sig_users
    if threading.current_thread() is not threading.main_thread():
        return False
    with _sig_lock:
        if _sig_users == 0:
            for s in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(s) == signal.SIG_DFL:
                    _sig_saved[s] = signal.signal(s, _interrupt)
        _sig_users += 1
    return True


def _release_signals() -> None:
    global _sig_users
    with _sig_lock:
        _sig_users -= 1
        if _sig_users == 0:
            for s, h in _sig_saved.items():
                if signal.getsignal(s) is _interrupt:
                    signal.signal(s, h)
            _sig_saved.clear()


@contextlib.contextmanager
def _signals_deferred():
    """A teardown is not cut short: SIGINT / SIGTERM / SIGHUP arriving meanwhile are held and
    raised as KeyboardInterrupt once it is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {s: signal.signal(s, lambda n, f: got.append(n)) for s in sigs}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    if got:
        raise KeyboardInterrupt(f"signal {got[0]} (held during the teardown)")


def _first(addrs, version: int) -> str | None:
    """The first address (without its prefix length) of an IP version."""
    return next((a.split("/")[0] for a in addrs if (":" in a) == (version == 6)), None)


def _down_quietly(dep) -> None:
    with contextlib.suppress(Exception):
        deployment.down(dep)


# ---- the lab ------------------------------------------------------------------------------------
class NfLab:
    """The user's config deployed on a throwaway lab built from it (see the module doc).

    ``config``: path of the config file (any kind `nf up` deploys); ``kind`` when the file name
    does not say it; ``timeout`` / ``quiet``: defaults of expect / expect_nothing (seconds);
    ``ignore``: frames no check sees (default: the kernels' own IPv6 MLD; None: none)."""

    def __init__(self, config: str | os.PathLike, *, kind: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, quiet: float = DEFAULT_QUIET,
                 ignore: Callable[[bytes], bool] | None = is_mld):
        from nf.config import ConfigError
        self.config = Path(config)
        self.timeout, self.quiet, self.ignore = timeout, quiet, ignore
        self.lab = None
        self.deployment = None
        self._cap = None
        self._held: list = []
        self._base = None
        self._pending: dict[str, list[bytes]] = {}
        self._closed = False
        self._kind, cfg = deployment.load(self.config, kind)
        deployment.check_kind(self._kind)
        plans = plan(self._kind, cfg)
        if not plans:
            raise ConfigError(str(self.config), [("interfaces", "the config names no interface: "
                                                  "there is nothing to build a lab around (test "
                                                  "its program with nf.testing.assert_packet)")])
        self._signals = _hold_signals()
        try:
            deployment.cleanup_stale()
            from nf.net.lab import Lab
            self.lab = Lab(lab_spec(plans))
            self._pass_on_hosts()
            self.deployment = deployment.up(self._kind, cfg, self.config, self.lab.dut,
                                            self.lab.name[3:])
            self._down = weakref.finalize(self, _down_quietly, self.deployment)
            self.ports: dict[str, Port] = {}
            for p, h in zip(plans, self.lab.hosts.values()):
                self.ports[p.port] = Port(
                    name=p.port, host=h.name, mac=h.mac, dut_mac=h.port_mac, ifindex=h.port_ifindex,
                    ip4=_first(h.addresses, 4), ip6=_first(h.addresses, 6),
                    dut_ip4=_first(h.port_addresses, 4), dut_ip6=_first(h.port_addresses, 6),
                    vlan=p.vlan, vlans=p.vlans, _lab=self)
            self._tap = {self.lab.tap(p.host): p.name for p in self.ports.values()}
            if self._kind.name == "router":
                self._resolve_gateways()
            self._cap = self.lab.capture([p.host for p in self.ports.values()])
            self._pending = {n: [] for n in self.ports}
        except BaseException:
            self.close()
            raise

    # -- lifetime ---------------------------------------------------------------------------
    def _pass_on_hosts(self) -> None:
        """Native XDP_PASS on every host end (XDP_TX back into a host needs a program there to
        kick its NAPI: measured in tests/xdp_progs/router/router_topo.py)."""
        from nf.bpf import XdpMode
        from nf.datapath import BASE_PROGRAM, load_base
        self._base = load_base()
        for h in self.lab.hosts.values():
            with self.lab.enter(h.name):
                self._held.append(self._base.program(BASE_PROGRAM).attach_xdp(h.ifindex, XdpMode.NATIVE))

    def _resolve_gateways(self, timeout: float = 5.0) -> None:
        """Each router host resolves the router's addresses (an ARP request, a neighbour
        solicitation) as a real host does before sending through its gateway, and the lab waits
        for the kernel's answers. Linux learns a host from its request, and so does the router
        (learn_neighbours): its answers (ICMP errors, echo replies) then go straight back, as a
        Linux router's do. Done before capturing: tests start from a resolved network."""
        from scapy.layers.inet6 import ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
        from scapy.layers.l2 import ARP, Ether
        from scapy.utils6 import in6_getnsma, in6_getnsmac
        from socket import AF_INET6, inet_pton, inet_ntop
        want: dict[tuple[str, str], int] = {}
        with self.lab.capture([p.host for p in self.ports.values()]) as cap:
            for p in self.ports.values():
                frames = []
                if p.ip4 and p.dut_ip4:
                    frames.append(Ether(src=p.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
                        op=1, hwsrc=p.mac, psrc=p.ip4, pdst=p.dut_ip4))
                if p.ip6 and p.dut_ip6:
                    nsma = in6_getnsma(inet_pton(AF_INET6, p.dut_ip6))
                    frames.append(Ether(src=p.mac, dst=in6_getnsmac(nsma)) /
                                  IPv6(src=p.ip6, dst=inet_ntop(AF_INET6, nsma), hlim=255) /
                                  ICMPv6ND_NS(tgt=p.dut_ip6) / ICMPv6NDOptSrcLLAddr(lladdr=p.mac))
                if frames:
                    want[self.lab.tap(p.host)] = len(frames)
                    p.send(frames)
            deadline = time.monotonic() + timeout
            got = {t: 0 for t in want}
            while any(got[t] < n for t, n in want.items()) and time.monotonic() < deadline:
                for t, fs in cap.take().items():
                    if t in got:
                        got[t] += sum(1 for f in fs if _is_resolution_answer(f))
                cap.wait(count=1, timeout=0.05)
        short = [self._tap[t] for t, n in want.items() if got[t] < n]
        if short:
            raise RuntimeError(f"the router's kernel did not answer ARP/ND on {', '.join(short)} "
                               f"within {timeout:g} s")

    def close(self) -> None:
        """Tear down: the deployment (pins, record), then the namespaces. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            with _signals_deferred():
                try:
                    if self._cap is not None:
                        self._cap.close()
                    if self.deployment is not None:
                        self._down.detach()
                        deployment.down(self.deployment)
                finally:
                    for link in self._held:
                        with contextlib.suppress(Exception):
                            link.close()
                    if self._base is not None:
                        self._base.close()
                    if self.lab is not None:
                        self.lab.destroy()
        finally:
            if getattr(self, "_signals", False):
                self._signals = False
                _release_signals()

    def __enter__(self) -> "NfLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- names ----------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The deployed kind: l2_switch, router, sketch, flow_table, filter or chain."""
        return self._kind.name

    @property
    def name(self) -> str:
        """Instance name of the deployed copy (`nf show` lists it while the lab is up)."""
        return self.deployment.name

    @property
    def dut(self) -> str:
        """The netns the NF runs in."""
        return self.lab.dut

    def port(self, port: "str | Port") -> Port:
        name = port.name if isinstance(port, Port) else port
        if name not in self.ports:
            raise KeyError(f"no port {name!r} (ports: {', '.join(self.ports)})")
        return self.ports[name]

    # -- frames ---------------------------------------------------------------------------------
    def send(self, port: "str | Port", frames: Any) -> int:
        """Send frames (bytes, scapy packets, or a list of them) from ``port``'s host."""
        p = self.port(port)
        return self.lab.send(p.host, _listed(frames))

    def _pull(self) -> None:
        for tap, frames in self._cap.take().items():
            keep = [f for f in frames if not (self.ignore and self.ignore(f))]
            self._pending[self._tap[tap]] += keep

    def received(self, port: "str | Port") -> list[bytes]:
        """Frames arrived at ``port`` and not yet taken by expect (nothing is waited for)."""
        self._pull()
        return list(self._pending[self.port(port).name])

    def flush(self) -> None:
        """Forget every frame arrived so far."""
        self._pull()
        for v in self._pending.values():
            v.clear()

    def _wait(self, until: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._pull()
            left = deadline - time.monotonic()
            if until() or left <= 0:
                return
            self._cap.wait(count=1, timeout=min(left, 0.05))

    def expect(self, port: "str | Port", frames: Any, timeout: float | None = None) -> list[bytes]:
        """The next ``len(frames)`` frames at ``port`` are these, in order: each exact (bytes, a
        scapy packet: byte for byte, a per-layer diff when not) or a Fields (only those fields).
        Waits up to ``timeout`` seconds for them; returns the frames taken. Frames beyond them
        stay for the next expect / expect_nothing."""
        p = self.port(port).name
        want = _listed(frames)
        if not want:
            raise ValueError("expect needs at least one frame (expect_nothing checks for none)")
        t = self.timeout if timeout is None else timeout
        self._wait(lambda: len(self._pending[p]) >= len(want), t)
        got = self._pending[p][:len(want)]
        del self._pending[p][:len(want)]
        lines = []
        if len(got) < len(want):
            lines.append(f"{p}: expected {len(want)} frame(s), {len(got)} arrived within {t:g} s")
        for i, (w, g) in enumerate(zip(want, got), 1):
            pr = problems(w, g)
            if pr:
                lines.append(f"{p}: frame {i} of {len(want)} differs ({summary(g)}):")
                lines += [f"  {x}" for x in pr]
        if lines:
            if len(got) < len(want):
                lines += self._elsewhere(exclude=p)
            raise ExpectationError("\n".join(lines))
        return got

    def _elsewhere(self, exclude: str) -> list[str]:
        out = []
        for n, fs in self._pending.items():
            if n != exclude and fs:
                out.append(f"  meanwhile at {n}: " + "; ".join(summary(f) for f in fs[:3])
                           + (f" (+{len(fs) - 3} more)" if len(fs) > 3 else ""))
        return out

    def _ports(self, port) -> list[str]:
        if port is None:
            return list(self.ports)
        if isinstance(port, (str, Port)):
            return [self.port(port).name]
        return [self.port(x).name for x in port]

    def unexpected(self, port: "str | Port | Iterable | None" = None,
                   timeout: float | None = None) -> dict[str, list[bytes]]:
        """Wait ``timeout`` seconds, then take every frame not taken by expect at ``port`` (as
        expect_nothing names ports): {port: frames} of the ports that got any."""
        names = self._ports(port)
        self._wait(lambda: False, self.quiet if timeout is None else timeout)
        out = {n: self._pending[n][:] for n in names if self._pending[n]}
        for n in out:
            self._pending[n].clear()
        return out

    def expect_nothing(self, port: "str | Port | Iterable | None" = None,
                       timeout: float | None = None) -> None:
        """No frame (not taken by expect) arrives at ``port`` (a name, a Port, a list of them;
        None: every port) within ``timeout`` seconds (fails at the first one)."""
        names = self._ports(port)
        self._wait(lambda: any(self._pending[n] for n in names), self.quiet if timeout is None else timeout)
        bad = [(n, self._pending[n]) for n in names if self._pending[n]]
        if bad:
            lines = []
            for n, fs in bad:
                lines.append(f"{n}: expected nothing, {len(fs)} frame(s) arrived:")
                lines += [f"  {summary(f)}" for f in fs[:5]] + ([f"  ... {len(fs) - 5} more"]
                                                                 if len(fs) > 5 else [])
                fs.clear()
            raise ExpectationError("\n".join(lines))

    # -- counters -------------------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        """Every counter of the deployed NF now, flat (``rt0.rx_packets``, ``class static.packets``,
        ``verdict.redirect``, ``epoch.packets``, ``table.hits``; see deployment.counters)."""
        return deployment.counters(self.deployment)

    def delta(self, before: dict[str, int], after: dict[str, int] | None = None) -> dict[str, int]:
        """Counters that changed since ``before`` (a counters() result): name -> after - before."""
        after = self.counters() if after is None else after
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}

    def assert_counters(self, before: dict[str, int], expected: dict[str, int],
                        timeout: float = 0.0) -> dict[str, int]:
        """Each named counter moved by exactly this much since ``before`` (others may move too),
        re-read for up to ``timeout`` seconds while they do not (the datapath counts in softirq,
        after send() returned). Returns every delta."""
        deadline = time.monotonic() + timeout
        while True:
            after = self.counters()
            lines = []
            for k, want in expected.items():
                if k not in after:
                    close = difflib.get_close_matches(k, after, n=3)
                    lines.append(f"no counter {k!r}" + (
                        f" (did you mean {', '.join(close)}?)" if close
                        else f" (counters: {', '.join(sorted(after))})"))
                    continue
                got = after[k] - before.get(k, 0)
                if got != want:
                    lines.append(f"{k}: expected {want:+d}, got {got:+d} "
                                 f"({before.get(k, 0)} -> {after[k]})")
            if not lines:
                return {k: v - before.get(k, 0) for k, v in after.items()}
            if time.monotonic() >= deadline:
                raise ExpectationError("counters:\n" + "\n".join(f"  {x}" for x in lines))
            time.sleep(0.02)

    # -- BPF_PROG_TEST_RUN on the deployed program ------------------------------------------------
    @contextlib.contextmanager
    def program(self, port: "str | Port"):
        """The XDP program the kernel runs on ``port`` (for a chain, its dispatcher), opened by
        id; use it with run_packet / assert_packet (ingress_ifindex=port.ifindex) inside the
        dut netns, or call lab.run_packet / lab.assert_packet, which do that."""
        from nf.bpf import Program
        from nf.bpf.xdp import query
        p = self.port(port)
        with self.lab.enter("dut"):
            pid = query(p.ifindex).prog_id
        if not pid:
            raise RuntimeError(f"no XDP program on {p.name}")
        prog = Program.from_id(pid)
        try:
            yield prog
        finally:
            prog.close()

    def run_packet(self, port: "str | Port", frame: Any):
        """(verdict, output bytes) of one frame through the deployed program, as if it arrived
        at ``port`` (BPF_PROG_TEST_RUN: maps and counters are the deployment's own)."""
        from nf.testing.harness import run_packet
        p = self.port(port)
        with self.program(p) as prog, self.lab.enter("dut"):
            return run_packet(prog, frame, ingress_ifindex=p.ifindex)

    def assert_packet(self, port: "str | Port", frame: Any, verdict, expected: Any = None) -> bytes:
        """assert_packet (nf.testing.harness) on the deployed program at ``port``."""
        from nf.testing.harness import assert_packet
        p = self.port(port)
        with self.program(p) as prog, self.lab.enter("dut"):
            return assert_packet(prog, frame, verdict, expected, ingress_ifindex=p.ifindex)


def _is_resolution_answer(f: bytes) -> bool:
    """An ARP reply or an IPv6 neighbour advertisement (no VLAN tag: router labs have none)."""
    if f[12:14] == b"\x08\x06":
        return len(f) >= 22 and f[20:22] == b"\x00\x02"
    return f[12:14] == b"\x86\xdd" and len(f) > 54 and f[20] == 58 and f[54] == 136


def _listed(frames: Any) -> list:
    """One frame (bytes, a scapy packet, Fields) or any iterable of them, as a list."""
    from scapy.packet import Packet
    if isinstance(frames, (bytes, bytearray, memoryview, Packet, Fields)):
        return [frames]
    return list(frames)


__all__ = ["NfLab", "Port", "Fields", "ExpectationError", "plan", "lab_spec"]
