"""`nf demo`: a lab defined in YAML (configs/lab.yaml), the L2 switch on its dut ports, scapy
traffic between the hosts, and a check that what arrived and what the switch counted equal what
the reference model (nf/models/l2_switch.py) says for what was sent.

    lab:      a LabSpec (nf/net/lab.py): hosts, each in its own netns with a veth to the dut netns
    switch:   an l2_switch config (configs/l2_switch.yaml shape); its ports are the lab's dut
              ports, its netns is the lab's dut (the real, unique netns name is filled in)
    traffic:  steps {src, dst (host | broadcast), count, size}: scapy Ether/IPv4/UDP frames

The hosts carry no IP addresses on purpose: frames then reach the host stacks and are dropped
there silently (no ICMP errors, no ARP), so every frame on the wire is one the demo sent and the
counters can be compared exactly. Each step is sent, captured at every other host and checked
against the model frame by frame (bytes, not just counts) before the next step starts.

The switch is deployed through the same path as `nf up` (a deployment record under bpffs), so
`nf show`, `nf fdb`, `nf stats` and `nf metrics` in another terminal see it while --keep holds it.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, model_validator

from nf.config import ConfigError, Model, load, validate
from nf.config.l2_switch import L2SwitchConfig
from nf.net.lab import LabSpec


class Step(Model):
    src: str = Field(description="sending host")
    dst: Union[str, Literal["broadcast"]] = Field(description="receiving host, or broadcast")
    count: int = Field(1, ge=1, le=100000)
    size: int = Field(64, ge=60, le=1514, description="frame bytes without FCS")
    note: str = ""


class RouteStep(Model):
    src: str = Field(description="sending host of the router lab")
    dst: str = Field(description="destination IPv4 address")
    count: int = Field(1, ge=1, le=100000)
    ttl: int = Field(64, ge=2, le=255)
    note: str = ""


class RouterScene(Model):
    lab: LabSpec = Field(description="hosts on their own subnets (addresses, port_addresses)")
    config: dict = Field(description="a router config without interfaces: they are the lab's dut "
                                     "ports, with the port addresses and MACs of the lab; every host "
                                     "address and every traffic destination on a host's subnet gets "
                                     "a static neighbour entry for that host's MAC")
    traffic: list[RouteStep] = Field(min_length=1)


class DemoSpec(Model):
    lab: LabSpec
    switch: dict = Field(description="an l2_switch config; ports are the lab's dut ports")
    sketch: Optional[dict] = Field(None, description="a sketch config (configs/sketch.yaml shape) "
                                   "attached to every host's interface: the top talkers as received")
    traffic: list[Step] = Field(min_length=1)
    router: Optional[RouterScene] = Field(None, description="a second scene: the LPM router")

    @model_validator(mode="after")
    def _consistent(self):
        hosts = {h.name: (h.port or f"p{i}") for i, h in enumerate(self.lab.hosts, 1)}
        sw = validate({**self.switch, "netns": self.switch.get("netns") or self.lab.dut},
                      L2SwitchConfig, "switch")
        if sw.netns != self.lab.dut:
            raise ValueError(f"switch.netns must be the lab's dut ({self.lab.dut!r}), not {sw.netns!r}")
        ports = set(hosts.values())
        for i, p in enumerate(sw.ports):
            if p.name not in ports:
                raise ValueError(f"switch.ports[{i}].name: {p.name!r} is not a dut port of the lab "
                                 f"({', '.join(sorted(ports))})")
        if self.sketch is not None:
            from nf.config.sketch import SketchConfig
            if self.sketch.get("interfaces"):
                raise ValueError("sketch.interfaces: the demo attaches the sketch to every host itself")
            validate(self.sketch, SketchConfig, "sketch")
        if self.router is not None:
            if "interfaces" in self.router.config or "neighbours" in self.router.config:
                raise ValueError("router.config: interfaces and neighbours come from router.lab")
            names = {h.name for h in self.router.lab.hosts}
            for i, s in enumerate(self.router.traffic):
                if s.src not in names:
                    raise ValueError(f"router.traffic[{i}].src: no host {s.src!r} in router.lab")
            from nf.config.router import validate_router_config
            cfg = validate_router_config(_router_cfg(self.router), "router.config")
            for i, s in enumerate(self.router.traffic):
                if _next_hop(cfg, s.dst) is None:
                    raise ValueError(f"router.traffic[{i}].dst: {s.dst} has no route the demo "
                                     "models (a connected subnet or a route with one via)")
        for i, s in enumerate(self.traffic):
            for f in ("src", "dst"):
                v = getattr(s, f)
                if v != "broadcast" and v not in hosts:
                    raise ValueError(f"traffic[{i}].{f}: no host {v!r} (hosts: {', '.join(hosts)})")
            if s.src == "broadcast":
                raise ValueError(f"traffic[{i}].src: a sender must be a host")
        return self

    def switch_config(self, dut_netns: str, suffix: str = "") -> L2SwitchConfig:
        name = self.switch.get("name", "l2sw") + suffix
        return validate({**self.switch, "netns": dut_netns, "name": name}, L2SwitchConfig, "switch")


def load_spec(path: str | Path) -> DemoSpec:
    try:
        return load(path, DemoSpec)
    except ConfigError:
        raise
    except ValueError as e:  # a validator outside pydantic's error collection
        raise ConfigError(str(path), [("", str(e))]) from None


def frames_for(step: Step, lab, seq0: int) -> list[bytes]:
    """Scapy Ether/IPv4/UDP frames of one step; the payload numbers each frame."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    src = lab.host(step.src)
    si = list(lab.hosts).index(step.src) + 1
    if step.dst == "broadcast":
        dmac, dip = "ff:ff:ff:ff:ff:ff", "10.0.0.255"
    else:
        dmac, dip = lab.host(step.dst).mac, f"10.0.0.{list(lab.hosts).index(step.dst) + 1}"
    out = []
    for n in range(step.count):
        base = Ether(src=src.mac, dst=dmac) / IP(src=f"10.0.0.{si}", dst=dip) / UDP(sport=40000, dport=9)
        tag = f"xdp-nf demo #{seq0 + n}".encode()
        pad = max(0, step.size - len(base) - len(tag))
        out.append(bytes(base / Raw(tag + b"." * pad)))
    return out


def _model(cfg: L2SwitchConfig, ifindexes: dict[str, int]):
    from nf.models.l2_switch import PortModel, SwitchModel
    from nf.nfs.l2_switch import mac_bytes, plan_ports

    ports = [PortModel(p.ifindex, p.idx, p.mode, p.pvid, frozenset(p.tagged), p.learning)
             for p in plan_ports(cfg, ifindexes)]
    m = SwitchModel(ports, int(cfg.aging_time * 1e9), cfg.fdb_size)
    for e in cfg.static_entries:
        m.add_static(mac_bytes(e.mac), e.vlan, ifindexes[e.port])
    return m


def run(config: str | Path, out, keep: bool = False) -> int:
    """The demo; returns the exit code (0 only when everything matched)."""
    spec = load_spec(config)
    rc = _switch_scene(config, out, keep)
    if spec.router is not None:
        rc = _router_scene(spec.router, out) or rc
    out.print(f"demo: {'PASS' if rc == 0 else 'FAIL'}", markup=False)
    return rc


def _switch_scene(config: str | Path, out, keep: bool = False) -> int:
    from rich.table import Table

    from nf import deploy, engine
    from nf.console import E_CHECK
    from nf.net.lab import Lab
    from nf.net.netns import exists as netns_exists
    from nf.nfs.l2_switch import KIND as kind, mac_str, now_ns

    spec = load_spec(config)
    say = lambda s: out.print(s, markup=False)  # noqa: E731
    say(f"lab: {len(spec.lab.hosts)} hosts, each in its own netns, veths to the dut netns")
    t0 = time.monotonic()
    with Lab(spec.lab) as lab:
        # one instance per demo process: two demos (or test runs) at once never collide
        cfg = spec.switch_config(lab.dut, f"-{os.getpid()}")
        name = cfg.name
        say(f"lab up in {time.monotonic() - t0:.2f} s; dut netns {lab.dut}")
        rec = sk = None
        with deploy.locked():
            base = spec.switch.get("name", "l2sw") + "-"
            for old in deploy.records():       # left by a killed demo: its lab netns is gone
                if old.name.startswith(base) and old.netns and not netns_exists(old.netns) \
                        and not old.owner_alive():
                    say(f"{old.name}: removing a deployment left by an earlier demo (its lab is gone)")
                    engine.teardown(old)
            kind.check(cfg)
            engine.up(None, kind, cfg, name, say)
            rec = deploy.read(name)
        try:
            say(f"switch {name} up: variant {rec.variant}, attach {rec.mode}, ports "
                + ", ".join(f"{p.name}({p.mode.value} {p.vlan or p.vlans})" for p in cfg.ports))
            try:
                sk = _sketch_up(spec, lab, say)
            except Exception as e:  # noqa: BLE001 - the switch part still runs and is checked
                say(f"sketch: SKIPPED, it did not come up: {str(e).splitlines()[0]}")
            ifx = {h.port: h.port_ifindex for h in lab.hosts.values()}
            model = _model(cfg, {p.name: ifx[p.name] for p in cfg.ports})
            by_ifindex = {h.port_ifindex: h.name for h in lab.hosts.values()}
            ok = deliv_ok = True
            tt = Table(title="traffic (scapy Ether/IPv4/UDP, checked frame by frame)")
            for c in ("#", "from", "to", "frames", "expected deliveries", "received", "match"):
                tt.add_column(c, justify="right" if c in ("#", "frames", "expected deliveries", "received") else "left")
            seq = 0
            sk_expect: dict[bytes, int] = {}
            for i, step in enumerate(spec.traffic):
                frames = frames_for(step, lab, seq)
                seq += len(frames)
                ingress = lab.host(step.src).port_ifindex
                expect: dict[str, Counter] = {h: Counter() for h in lab.hosts if h != step.src}
                now = now_ns()
                for f in frames:
                    res = model.receive(f, ingress, now)
                    for ifindex, b in res.out.items():
                        expect[by_ifindex[ifindex]][b] += 1
                n_exp = sum(sum(c.values()) for c in expect.values())
                if sk is not None:
                    for c in expect.values():
                        for b, n in c.items():
                            k = _sketch_key(sk, b)
                            if k is not None:
                                sk_expect[k] = sk_expect.get(k, 0) + n
                listeners = [h for h in lab.hosts if h != step.src]
                with lab.capture(listeners) as cap:
                    lab.send(step.src, frames)
                    got = cap.wait(count=n_exp, timeout=3.0)
                    if n_exp:  # anything extra (a duplicate, a leak) shows up in a short grace
                        got = cap.wait(count=None, timeout=0.2, quiet=0.1)
                    else:
                        got = cap.wait(count=None, timeout=0.3)
                got_h = {lab.host(h).name: Counter(got[lab.tap(h)]) for h in listeners}
                match = all(got_h[h] == expect[h] for h in listeners)
                ok &= match
                deliv_ok &= match
                n_got = sum(sum(c.values()) for c in got_h.values())
                tt.add_row(str(i + 1), step.src, step.dst, str(len(frames)), str(n_exp), str(n_got),
                           "yes" if match else "NO")
                if not match:
                    for h in listeners:
                        if got_h[h] != expect[h]:
                            say(f"  step {i + 1}: {h} expected {sum(expect[h].values())} frames, "
                                f"got {sum(got_h[h].values())} ({'same count, other bytes' if sum(expect[h].values()) == sum(got_h[h].values()) else 'count differs'})")
            out.print(tt)

            with engine.opened(kind, rec) as sw:
                fdb = sw.fdb()
                st = sw.stats()
            ft = Table(title=f"{name}: FDB")
            for c in ("mac", "vlan", "port", "host", "type", "age (s)"):
                ft.add_column(c)
            port_host = {h.port: h.name for h in lab.hosts.values()}
            mac_host = {h.mac: h.name for h in lab.hosts.values()}
            for e in fdb:
                ft.add_row(e.mac, str(e.vlan), e.port, mac_host.get(e.mac, "-"),
                           "static" if e.static else "learned", f"{e.age_s:.1f}")
            out.print(ft)
            want_fdb = {(mac_str(k[0]), k[1], by_ifindex.get(v.ifindex)) for k, v in model.fdb.items()}
            got_fdb = {(e.mac, e.vlan, port_host.get(e.port)) for e in fdb}
            fdb_ok = want_fdb == got_fdb
            ok &= fdb_ok

            from nf.models.l2_switch import COUNTERS
            shown = [c for c in COUNTERS if any(st[p.name][c] or model.stats[ifx[p.name]][c] for p in cfg.ports)]
            # counters as rows, ports as columns: fits 80 columns whatever the counter names
            pt = Table(title=f"{name}: per-port counters (switch vs model of what was sent)")
            pt.add_column("counter")
            for p in cfg.ports:
                pt.add_column(f"{p.name} ({port_host.get(p.name, '-')})", justify="right")
            cnt_ok = True
            for c in shown:
                cells = []
                for p in cfg.ports:
                    got_v, want_v = st[p.name][c], model.stats[ifx[p.name]][c]
                    cnt_ok &= got_v == want_v
                    cells.append(str(got_v) if got_v == want_v else f"{got_v} (want {want_v})")
                pt.add_row(c, *cells)
            for p, c in st.items():           # frames on ports the config does not know
                if p not in {q.name for q in cfg.ports} and any(c.values()):
                    cnt_ok = False
                    say(f"unexpected counters on {p}: {c}")
            out.print(pt)
            ok &= cnt_ok
            sk_ok = True
            if sk is not None:
                sk_ok = _sketch_report(sk, sk_expect, out)
                ok &= sk_ok
            verdict = "PASS" if ok else "FAIL"
            say(f"{verdict}: deliveries {'match' if deliv_ok else 'DIFFER from'} the model frame by frame; "
                f"FDB {'matches' if fdb_ok else 'DIFFERS from'} the model; counters "
                f"{'equal' if cnt_ok else 'DIFFER from'} what was sent"
                + ("" if sk is None else f"; sketch estimates {'equal' if sk_ok else 'DIFFER from'} "
                                         "what the hosts received"))
            if keep:
                say("--keep: lab and switch stay up; try `nf show`, `nf fdb`, `nf stats`; Ctrl-C ends")
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    pass
            return 0 if ok else E_CHECK
        finally:
            if sk is not None:
                sk.down()
            with deploy.locked():
                r = deploy.read(name)
                if r is not None:
                    engine.teardown(r)
            say(f"{name} down, lab removed")


def _sketch_up(spec: DemoSpec, lab, say):
    """One sketch program on every host's interface (native XDP, in each host's netns): it sees
    exactly the frames the hosts receive. None when the spec has no sketch."""
    if spec.sketch is None:
        return None
    from nf.config.sketch import SketchConfig
    from nf.nfs.sketch import Sketch

    sk = Sketch(validate(spec.sketch, SketchConfig, "sketch"))
    try:
        sk.load()
        for h in lab.hosts.values():
            with lab.enter(h.name):
                sk.attach(h.ifindex)
    except BaseException:
        sk.down()
        raise
    say(f"sketch up on every host's interface: {sk.variant.value} count-min "
        f"{sk.cfg.depth}x{sk.cfg.width}, key {sk.cfg.key.value}")
    return sk


def _sketch_key(sk, frame: bytes) -> bytes | None:
    """The sketch key of a frame as the datapath derives it (IPv4/UDP frames of the demo)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    p = Ether(frame)
    if IP not in p:
        return None
    ip = p[IP]
    sport, dport = (p[UDP].sport, p[UDP].dport) if UDP in p else (0, 0)
    return sk.key(src=ip.src, dst=ip.dst, sport=sport, dport=dport, proto=ip.proto,
                  mac=p[Ether].src)


def _sketch_report(sk, expect: dict[bytes, int], out) -> bool:
    """Top talkers as the sketch saw them, next to what the hosts received. Count-min never
    underestimates; with a few keys in 4 x 1024 counters every estimate is exact."""
    from rich.table import Table
    from nf.nfs.sketch import key_text

    snap = sk.snapshot()
    top = sk.topk(snap=snap)
    t = Table(title=f"top talkers (sketch, key {sk.cfg.key.value}) vs frames received")
    for c in ("#", "key", "estimate", "received", "match"):
        t.add_column(c, justify="right" if c in ("#", "estimate", "received") else "left")
    ok = True
    keys = [k for k, _ in top] + sorted(k for k in expect if k not in dict(top))
    for i, k in enumerate(keys, 1):
        est, want = snap.estimate(k), expect.get(k, 0)
        same = est == want
        ok &= same
        t.add_row(str(i), key_text(sk.cfg.key, k), str(est), str(want), "yes" if same else "NO")
    out.print(t)
    return ok


# ---- scene 2: the router ------------------------------------------------------------------------
def _router_hosts(spec: LabSpec):
    """(name, port, port_mac, port_addresses, mac, addresses) of a lab spec's hosts, with the
    lab's defaults (a running Lab gives the same values)."""
    from nf.net.lab import host_mac, port_mac
    return [(h.name, h.port or f"p{i}", (h.port_mac or port_mac(i)).lower(),
             [str(a) for a in h.port_addresses], (h.mac or host_mac(i)).lower(),
             [str(a) for a in h.addresses]) for i, h in enumerate(spec.hosts, 1)]


def _router_cfg(scene: RouterScene) -> dict:
    import ipaddress
    hosts = _router_hosts(scene.lab)
    neigh = {}
    for _, _, _, _, mac, addrs in hosts:
        for a in addrs:
            neigh[a.split("/")[0]] = mac
    for st in scene.traffic:
        d = ipaddress.ip_address(st.dst)
        for _, _, _, _, mac, addrs in hosts:
            if any(d in ipaddress.ip_interface(a).network for a in addrs):
                neigh.setdefault(str(d), mac)
    return {**scene.config,
            "interfaces": [{"name": port, "mac": pmac, "addresses": paddrs}
                           for _, port, pmac, paddrs, _, _ in hosts],
            "neighbours": [{"address": a, "mac": m} for a, m in neigh.items()]}


def _next_hop(cfg, dst: str):
    """(egress port, next-hop address) by longest prefix over connected subnets and `via`
    routes; None when the demo does not model the destination (blackhole, group, no route)."""
    import ipaddress
    from nf.config.router import connected, port_of_gateway
    d = ipaddress.ip_address(dst)
    best = None
    for name, itf in connected(cfg):
        if d.version == itf.version and d in itf.network:
            if best is None or itf.network.prefixlen > best[0]:
                best = (itf.network.prefixlen, name, str(d))
    for r in cfg.routes:
        net = ipaddress.ip_network(r.prefix)
        if d.version == net.version and d in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, port_of_gateway(cfg, r.via[0], r.dev), r.via[0]) if len(r.via) == 1 \
                else (net.prefixlen, None, None)
    return None if best is None or best[1] is None else best[1:]


def _router_scene(scene: RouterScene, out) -> int:
    """Hosts on their own subnets, the router on the dut ports, UDP through it: every frame must
    arrive at the next hop's host rewritten exactly as RFC 1812 says (MACs, TTL - 1, checksum),
    and the router's port counters must equal what was sent."""
    import ipaddress
    from collections import Counter

    from rich.table import Table
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    from nf.bpf import XdpMode
    from nf.config.router import validate_router_config
    from nf.console import E_CHECK, E_CONFIG, Fail
    from nf.net.lab import Lab

    say = lambda s: out.print(s, markup=False)  # noqa: E731
    with Lab(scene.lab) as lab:
        cfg = validate_router_config(_router_cfg(scene), "router.config")
        try:
            from nf.nfs.router import Router
            with lab.enter("dut"):
                r = Router(cfg)
                r.load()
                r.attach(XdpMode.NATIVE)
        except Exception as e:  # noqa: BLE001 - scene 1 stands on its own
            say(f"router: SKIPPED, it did not come up: {str(e).splitlines()[0]}")
            return 0
        try:
            say(f"router up ({cfg.mode} tables) on " + ", ".join(
                f"{i.name} {' '.join(i.addresses)}" for i in cfg.interfaces))
            rt = Table(title="router: routes")
            for c in ("prefix", "next hop", "port"):
                rt.add_column(c)
            from nf.config.router import connected
            for name, itf in connected(cfg):
                rt.add_row(str(itf.network), "connected", name)
            for rr in cfg.routes:
                hop = _next_hop(cfg, str(ipaddress.ip_network(rr.prefix).network_address))
                rt.add_row(rr.prefix, rr.target(), hop[0] if hop else "-")
            out.print(rt)
            by_port = {h.port: h for h in lab.hosts.values()}
            mac_host = {h.mac: h.name for h in lab.hosts.values()}
            neigh = {n.address: n.mac for n in cfg.neighbours}
            before = r.port_stats()
            want_rx, want_tx = Counter(), Counter()
            ok = True
            tt = Table(title="routed traffic (scapy Ether/IPv4/UDP, checked byte for byte)")
            for c in ("#", "from", "to", "frames", "arrives at", "received", "match"):
                tt.add_column(c, justify="right" if c in ("#", "frames", "received") else "left")
            for i, st in enumerate(scene.traffic, 1):
                src = lab.host(st.src)
                hop = _next_hop(cfg, st.dst)
                if hop is None:
                    raise Fail(E_CONFIG, f"router.traffic[{i - 1}].dst: {st.dst} has no "
                                                 "route the demo models (connected or one `via`)")
                port, nh = hop
                dst_host = by_port[port]
                frames, expect = [], Counter()
                for n in range(st.count):
                    p = Ether(src=src.mac, dst=src.port_mac) / IP(src=src.ip4, dst=st.dst, ttl=st.ttl) / \
                        UDP(sport=30000 + n, dport=9) / Raw(f"xdp-nf routed #{n}".encode().ljust(24, b"."))
                    frames.append(bytes(p))
                    q = Ether(bytes(p))
                    q[Ether].src, q[Ether].dst = dst_host.port_mac, neigh[nh]
                    q[IP].ttl -= 1
                    del q[IP].chksum
                    expect[bytes(q)] += 1
                want_rx[src.port] += st.count
                want_tx[port] += st.count
                with lab.capture([dst_host.name]) as cap:
                    lab.send(st.src, frames)
                    cap.wait(count=st.count, timeout=3.0)
                    got = Counter(cap.wait(count=None, timeout=0.2, quiet=0.1)[lab.tap(dst_host.name)])
                match = got == expect
                ok &= match
                tt.add_row(str(i), f"{st.src} ({src.ip4})", st.dst, str(st.count),
                           f"{mac_host.get(neigh[nh], '?')} via {port}", str(sum(got.values())),
                           "yes" if match else "NO")
            out.print(tt)
            after = r.port_stats()
            pt = Table(title="router: per-port counters (this scene's traffic)")
            pt.add_column("counter")
            for h in lab.hosts.values():
                pt.add_column(f"{h.port} ({h.name})", justify="right")
            cnt_ok = True
            for c in ("rx_packets", "tx_packets", "drops", "icmp_out"):
                cells = []
                for h in lab.hosts.values():
                    v = after[h.port][c] - before[h.port][c]
                    w = {"rx_packets": want_rx, "tx_packets": want_tx}.get(c, Counter())[h.port]
                    cnt_ok &= v == w
                    cells.append(str(v) if v == w else f"{v} (want {w})")
                pt.add_row(c, *cells)
            out.print(pt)
            ok &= cnt_ok
            say(f"{'PASS' if ok else 'FAIL'}: routed frames {'arrive' if ok else 'DO NOT all arrive'} "
                f"rewritten byte for byte; router counters {'equal' if cnt_ok else 'DIFFER from'} what was sent")
            return 0 if ok else E_CHECK
        finally:
            with lab.enter("dut"):
                r.close()
            say("router down, lab removed")
