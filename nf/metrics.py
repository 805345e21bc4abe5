"""Prometheus text exposition (format 0.0.4) of every counter of every deployed NF.

    text = metrics.render()                   # reads the pinned maps of each deployment
    metrics.serve("127.0.0.1:9101")           # GET /metrics; loopback addresses only

Families:
  xdpnf_up{instance,kind,variant,status}              1 per deployment record (gauge)
  xdpnf_xdp_packets_total{instance,kind,action}       the one exit point (stats.h), summed over CPUs
  xdpnf_xdp_bytes_total{instance,kind,action}
  xdpnf_xdp_reasons_total{instance,kind,reason}
  xdpnf_<kind>_<counter>_total{instance,port|class|group}  each NF's own counters per group
  xdpnf_sketch_epoch{instance,group} ...              gauges (each KIND's): values that also go down
                                                      (a sketch's current epoch, a table's entries)
  xdpnf_sketch_packets_total / _epochs_closed_total   from the sketch's pinned epoch log
  xdpnf_agent_running                                 1 while `nf agent` runs (gauge)
  xdpnf_kmod_loaded                                   1 when the enetstl module is loaded
  xdpnf_kmod_<counter>_total                          the module's path counters (SIMD/scalar...)
Counters are read fresh for every scrape; a deployment that cannot be read is reported by
xdpnf_scrape_error{instance} = 1 instead of failing the whole scrape.
"""
from __future__ import annotations

import ctypes
import ipaddress
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_NAME_OK = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(*parts: str) -> str:
    n = "_".join(_NAME_OK.sub("_", p) for p in parts if p)
    return n if not n[0].isdigit() else "_" + n


def _esc(v) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Family:
    def __init__(self, name: str, typ: str, help: str):
        self.name, self.typ, self.help = name, typ, help
        self.samples: list[tuple[dict, int | float]] = []

    def add(self, labels: dict, value) -> None:
        self.samples.append((labels, value))

    def text(self) -> str:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.typ}"]
        for labels, v in self.samples:
            lab = ",".join(f'{k}="{_esc(x)}"' for k, x in labels.items())
            out.append(f"{self.name}{{{lab}}} {v}" if lab else f"{self.name} {v}")
        return "\n".join(out)


class Exposition:
    def __init__(self):
        self.fams: dict[str, _Family] = {}

    def add(self, name: str, typ: str, help: str, labels: dict, value) -> None:
        f = self.fams.get(name)
        if f is None:
            f = self.fams[name] = _Family(name, typ, help)
        f.add(labels, value)

    def text(self) -> str:
        return "\n".join(f.text() for f in self.fams.values()) + "\n"


def _action_stats(rec):
    """Per-action summary from the pinned exit-point map (stats.h) the NF's KIND names, or None
    (a chain: its members have their own)."""
    from nf import engine
    from nf.bpf import BpfError, Map
    from nf.datapath import NfStats, sum_stats

    p = rec.pin_dir / (getattr(engine.get(rec.kind), "exit_stats", "") or "-")
    if not p.exists():
        return None
    try:
        m = Map.from_pin(p)
    except BpfError:
        return None
    try:
        if m.value_size != ctypes.sizeof(NfStats) or m.max_entries != 1:
            return None
        s = sum_stats(m.typed(ctypes.c_uint32, NfStats).lookup_percpu(ctypes.c_uint32(0)))
        s.nf_reasons = tuple(getattr(engine.get(rec.kind), "reasons", ()))
        return s
    finally:
        m.close()


def group_labels(rec, group: str) -> dict:
    """The label of a stats group, named for what it is: port="p1" for an interface of the
    deployment, class="static" for a group its NF calls "class static" (the router's route
    classes), else group="epoch" (a sketch's epoch, a flow table's table) - the same for the
    counters and the gauges of a group."""
    if group in rec.interfaces or group == "<unknown>":      # the switch's unknown ingress port
        return {"port": group}
    what, _, name = group.partition(" ")
    return {what: name} if name and _NAME_OK.sub("", what) == what else {"group": group}


def gauge(kind: str, counter: str) -> tuple[str, str] | None:
    """(metric name, help) when an NF's counter goes down as well as up (a Prometheus gauge: no
    _total suffix, no rate()); its KIND declares them. Every other per-NF value is a counter."""
    from nf import engine
    return getattr(engine.get(kind), "gauges", {}).get(counter)


def collect(exp: Exposition | None = None) -> Exposition:
    from nf import deploy, engine, kmod

    exp = exp or Exposition()
    for rec in deploy.records():
        base = {"instance": rec.name, "kind": rec.kind}
        exp.add("xdpnf_up", "gauge", "a deployment record exists (1)",
                {**base, "variant": rec.variant, "status": rec.status}, 1)
        try:
            s = _action_stats(rec)
            if s is not None:
                for a, v in s.packets.items():
                    exp.add("xdpnf_xdp_packets_total", "counter", "frames per XDP verdict at the exit point",
                            {**base, "action": a.name.lower()}, v)
                for a, v in s.bytes.items():
                    exp.add("xdpnf_xdp_bytes_total", "counter", "bytes per XDP verdict at the exit point",
                            {**base, "action": a.name.lower()}, v)
                for r, v in s.as_dict()["reasons"].items():
                    exp.add("xdpnf_xdp_reasons_total", "counter", "frames per exit reason",
                            {**base, "reason": r}, v)
            for port, counters in engine.stats(engine.get(rec.kind), rec).items():
                for c, v in counters.items():
                    g = gauge(rec.kind, c)
                    labels = {"instance": rec.name, **group_labels(rec, port)}
                    if g is not None:
                        exp.add(g[0], "gauge", g[1], labels, v)
                    else:
                        exp.add(metric_name("xdpnf", rec.kind, c, "total"), "counter",
                                f"{rec.kind} counter {c} per {next(iter(labels.keys() - {'instance'}))}",
                                labels, v)
            extra = getattr(engine.get(rec.kind), "metrics", None)
            if extra is not None:
                extra(rec, exp)
        except Exception as e:  # noqa: BLE001 - one unreadable deployment must not hide the rest
            exp.add("xdpnf_scrape_error", "gauge", "1 when a deployment's counters could not be read",
                    {"instance": rec.name, "error": type(e).__name__}, 1)
    from nf.agent import running
    exp.add("xdpnf_agent_running", "gauge", "1 while an `nf agent` flips the sketches' epochs", {},
            int(running() is not None))
    loaded = kmod.is_loaded()
    exp.add("xdpnf_kmod_loaded", "gauge", "1 when the enetstl kfunc module is loaded", {}, int(loaded))
    if loaded:
        try:
            for c, v in kmod.counters().items():
                exp.add(metric_name("xdpnf_kmod", c, "total") if not c.startswith("live") else
                        metric_name("xdpnf_kmod", c), "gauge" if c.startswith("live") else "counter",
                        f"enetstl module {c}", {}, v)
        except Exception:  # noqa: BLE001
            pass
    return exp


def render() -> str:
    return collect().text()


def parse_listen(addr: str) -> tuple[str, int]:
    """"127.0.0.1:9101", "[::1]:9101", ":9101" (loopback); refuses non-loopback addresses:
    the endpoint has no authentication."""
    host, sep, port = addr.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", addr
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
        p = int(port)
    except ValueError:
        raise ValueError(f"--listen {addr!r}: expected HOST:PORT with a numeric loopback address") from None
    if not ip.is_loopback:
        raise ValueError(f"--listen {addr!r}: only loopback addresses are served (no authentication)")
    if not 0 <= p <= 65535:
        raise ValueError(f"--listen {addr!r}: port out of range")
    return str(ip), p


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.split("?")[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        try:
            body = render().encode()
            code = 200
        except Exception as e:  # noqa: BLE001
            body, code = f"# scrape failed: {e}\n".encode(), 500
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def make_server(addr: str) -> ThreadingHTTPServer:
    host, port = parse_listen(addr)
    cls = ThreadingHTTPServer
    if ":" in host:
        import socket

        class _V6(ThreadingHTTPServer):
            address_family = socket.AF_INET6
        cls = _V6
    return cls((host, port), _Handler)


def serve(addr: str) -> None:
    srv = make_server(addr)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
