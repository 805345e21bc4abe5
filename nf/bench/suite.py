"""Runs every NF's benchmarks in one run on one machine and collects rows with their targets.

Sections (method: ARCHITECTURE.md §6):
- native: ns/packet of the pure-eBPF variants on the host (BPF_PROG_TEST_RUN with repeat, the
  kernel-reported duration, median of rounds), with the kernel LPM trie and a BPF hash map
  holding the same flows as baselines; scaling of routes, sketch depth and cuckoo load; the flow
  table and the switch FDB at 1M/4M/16M entries against the hash map (nf/bench/scale.py).
- guest (full run only): guest instructions per packet of the pure and eNetSTL variants of every
  NF in ONE QEMU TCG boot with the module loaded, with a per-function profile (nf/bench/guest.py).
- lab (full run only, root + netns): Mpps on a veth lab from an in-kernel generator
  (traffic/labgen.py), the NF's cost per frame net of the generator's own, against the no-work
  ceiling and the Linux bridge / Linux forwarding / bpf_fib_lookup, on one and two CPUs.

The measuring code is in nf/bench/<nf>.py (l2_switch, router, sketch, flow_table; lab.py for the
lab rate), which the @bench tests under tests/xdp_progs/ call too; this module only chooses
sizes, runs them together and compares the results with the targets of issues 4–7. `quick` = tiny sizes, host only (no VM, no lab): the whole run takes seconds.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from nf.bench.sketch import DEPTHS as SK_DEPTHS

ROOT = Path(__file__).resolve().parents[2]
NFS = ("l2_switch", "router", "sketch", "flow_table")


@dataclass
class Row:
    """One measured figure. `ratio` is the figure the target talks about (`ratio_is` says what it
    divides); `met` is None where no target applies."""
    nf: str
    what: str
    value: float
    unit: str
    method: str                      # "native" | "guest insns" | "lab" | "wall" | "memory"
    ratio: float | None = None
    ratio_is: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Results:
    quick: bool
    machine: dict
    rows: list[Row] = field(default_factory=list)
    # plot data: name -> {"x": [...], "xlabel": str, "ylabel": str, "series": {label: [...]}}
    series: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)   # "nf: what" -> [(function, insns/packet)]
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # nf/variants.py's entries of the NFs the guest measured (what `variant: auto` decides from)
    variants: dict = field(default_factory=dict)

    def add(self, *a, **kw) -> Row:
        r = Row(*a, **kw)
        self.rows.append(r)
        return r

    def target(self, nf, what, value, unit, method, ratio, ratio_is, op: str, bound: float) -> Row:
        """A row with a target `ratio op bound` (op one of ">=", "<=", "<")."""
        met = {">=": ratio >= bound, "<=": ratio <= bound, "<": ratio < bound}[op]
        sym = {">=": "≥", "<=": "≤", "<": "<"}[op]
        return self.add(nf, what, value, unit, method, ratio, ratio_is, f"{sym} {bound:.3g}", met)

    def to_json(self) -> str:
        d = asdict(self)
        return json.dumps(d, indent=1)


# ---------------------------------------------------------------------------------------------
# machine

def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"kernel": platform.release(), "cpu": cpu, "nproc": os.cpu_count(),
            "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "python": platform.python_version()}


# ---------------------------------------------------------------------------------------------
# helpers

def _empty_ns(frame: bytes, repeat: int, rounds: int) -> float:
    """Native ns/packet of the empty XDP program (`return XDP_PASS`) on the same frame."""
    from nf.vm import insncount
    fd = insncount.load_empty_xdp()
    try:
        t = insncount._TestRun(fd, frame)
        out = []
        for _ in range(rounds):
            t(repeat)
            out.append(t.attr.duration)
        return statistics.median(out)
    finally:
        os.close(fd)


def _ns(prog, frames, repeat: int, rounds: int, **kw) -> float:
    """Median over rounds of the mean over frames of the kernel-reported ns/packet."""
    per = []
    for _ in range(rounds):
        per.append(statistics.mean(prog.test_run(f, repeat=repeat, **kw).duration_ns for f in frames))
    return statistics.median(per)


def _bpf_stats_off() -> None:
    try:
        if Path("/proc/sys/kernel/bpf_stats_enabled").read_text().strip() != "0":
            raise RuntimeError("kernel.bpf_stats_enabled must be 0 while timing "
                               "(sysctl -w kernel.bpf_stats_enabled=0)")
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------------------------------
# native sections (host)



def native_sketch(res: Results, quick: bool) -> None:
    from nf.bench import sketch as sb
    from nf.nfs.sketch import Sketch
    frames = sb.frames(8)
    rep, rounds = (2_000, 1) if quick else (200_000, 5)
    empty = _empty_ns(frames[0], rep, rounds)
    ys = []
    for d in SK_DEPTHS:
        with Sketch(sb.cfg("pure", d)).load() as sk:
            v = max(_ns(sk.program, frames, rep, rounds) - empty, 0.0)
        ys.append(v)
        res.add("sketch", f"pure eBPF, d={d}, ns/packet beyond the empty program", v, "ns", "native")
    res.series.setdefault("sketch_depth", {"x": list(SK_DEPTHS), "xlabel": "depth d",
                                           "ylabel": "per packet", "series": {}})
    res.series["sketch_depth"]["series"]["pure native ns"] = ys


def native_flow_table(res: Results, quick: bool) -> None:
    from nf.bench import flow_table as fb
    ns = fb.native(rounds=1 if quick else 5, repeat=2_000 if quick else 100_000)
    loads = [int(x * 100) for x in fb.LOADS]
    for kind in ("hit", "miss"):
        p, h = ns[f"pure/{kind}/75"], ns[f"hash/{kind}/75"]
        res.target("flow_table", f"pure eBPF lookup, 75 % load, {kind}, hash mul64, the default "
                   f"(vs BPF hash map {h:.1f} ns)", p, "ns", "native", p / h, "pure / hash", "<=", 1.0)
    if not quick:   # the other key hash, side by side (its own table, the same flows)
        nc = fb.native(rounds=5, repeat=100_000, hash="crc32c")
        for kind in ("hit", "miss"):
            p, h = nc[f"pure/{kind}/75"], nc[f"hash/{kind}/75"]
            res.target("flow_table", f"pure eBPF lookup, 75 % load, {kind}, hash crc32c (vs BPF "
                       f"hash map {h:.1f} ns)", p, "ns", "native", p / h, "pure / hash", "<=", 1.0)
    s = res.series.setdefault("cuckoo_load", {"x": loads, "xlabel": "load %", "ylabel": "per packet",
                                              "series": {}})
    for name in ("pure", "hash"):
        for kind in ("hit", "miss"):
            s["series"][f"{name} {kind} native ns"] = [ns[f"{name}/{kind}/{l}"] for l in loads]
    one, two = fb.two_cpus_at_once(rounds=1 if quick else 5, repeat=20_000 if quick else 2_000_000)
    res.target("flow_table", f"hit, two flows inserted one after the other, each counted on its own "
               f"CPU: two CPUs at once vs one ({one:.1f} ns)", two, "ns", "native", two / one,
               "2 CPUs / 1", "<=", 1.1)
    res.notes.append(f"flow table: {fb.SIZE} slots, whole-program ns (the `base` program — parse, "
                     f"key, exit without a lookup — costs {ns['base/hit/75']:.1f} ns)")


def _scale_rows(res: Results, nf: str, rows: list[dict], ours: str, base: str, what_ours: str,
                what_base: str) -> None:
    """Rows of nf.bench.scale results (one dict per size): lookups, memory, insert rate, and the
    series of the ns/lookup plot. Targets (issue 18): ours <= 0.8x the hash map's lookup time
    at >= 1M entries, memory per entry <= the hash map's."""
    for r in rows:
        size, n = r["size"], r.get(f"{ours}_entries", r["entries"])
        tag = f"{size / (1 << 20):g}M" if size >= 1 << 20 else f"{size:,}"
        for kind in ("hit", "miss"):
            v, h = r[f"{ours}_{kind}_ns"], r[f"{base}_{kind}_ns"]
            row = (nf, f"{tag} entries, 75 % full, {kind}, random keys: {what_ours} vs {what_base} "
                   f"{h:.0f} ns", v, "ns/lookup", "native", v / h, "ours / hash")
            res.target(*row, "<=", 0.8) if size >= 1 << 20 else res.add(*row)
        b, hb = r[f"{ours}_bytes"] / n, r[f"{base}_bytes"] / r["entries"]
        row = (nf, f"{tag} entries: memory per entry, {what_ours} vs {what_base} {hb:.0f} B", b,
               "B/entry", "memory", b / hb, "ours / hash")
        res.target(*row, "<=", 1.0) if size >= 1 << 20 else res.add(*row)
        ri, rh = r[f"{ours}_insert_rate"], r[f"{base}_insert_rate"]
        res.add(nf, f"{tag} entries: control-plane inserts, {what_ours} (batch control program) vs "
                f"{what_base} (BPF_MAP_UPDATE_BATCH) {rh / 1e6:.2f} M/s", ri / 1e6, "M keys/s", "wall",
                ri / rh, "ours / hash")
        if r.get("efdb_refused"):
            res.notes.append(f"{nf} at {tag}: {r['efdb_refused']} of {r['entries']:,} keys refused "
                             "(their bucket's 16 ways taken before the table is full)")
    s = res.series.setdefault(f"{nf}_scale", {"x": [r["size"] for r in rows], "xlabel": "entries (75 % full)",
                                              "ylabel": "ns/lookup", "logx": True, "series": {}})
    for name, label in ((ours, what_ours), (base, what_base)):
        for kind in ("hit", "miss"):
            s["series"][f"{label} {kind}"] = [r[f"{name}_{kind}_ns"] for r in rows]


def native_flow_table_scale(res: Results, quick: bool) -> None:
    from nf.bench import scale
    sizes = (1 << 16,) if quick else scale.SIZES
    rows = [scale.flow_table(s, rounds=1 if quick else scale.ROUNDS) for s in sizes]
    _scale_rows(res, "flow_table", rows, "ft", "hash", "pure eBPF table", "BPF hash map")


def native_switch_scale(res: Results, quick: bool) -> None:
    from nf.bench import scale
    sizes = (1 << 16,) if quick else scale.SIZES
    rows = [scale.fdb(s, rounds=1 if quick else scale.ROUNDS) for s in sizes]
    _scale_rows(res, "l2_switch", rows, "efdb", "hash",
                "bucketised FDB (the eNetSTL variant's table, pure-eBPF algorithms)",
                "BPF hash map (the pure variant)")
    if not quick:                    # what `variant: auto` decides the switch from (nf/variants.py)
        from nf import variants
        res.variants.update(variants.from_switch_scale(rows, f"nf bench {res.machine['date']}, "
                                                             f"{res.machine['kernel']}"))


def native_router(res: Results, quick: bool) -> None:
    from nf.bench import router as rb
    sizes4 = (1_000, 10_000) if quick else (1_000, 10_000, 100_000, 1_000_000)
    sizes6 = (1_000, 10_000) if quick else (1_000, 100_000, 1_000_000)
    rounds, repeat = (1, 3) if quick else (5, 20)
    ncold = 4096 if quick else 65536
    table = rb.lookup_ns(sizes4, sizes6, ncold=ncold, rounds=rounds, repeat=repeat)
    # rows: every point; targets (issues 5 and 18) at the sizes they name
    order = {"hot": 0, "warm": 1, "cold": 2}
    full = not quick
    for (fam, n, kind, m), v in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])):
        if m != "dir":
            continue
        trie = table[(fam, n, kind, "trie")]
        name = f"{fam} {n:,} routes, {kind}: ours vs LPM trie {trie:.1f} ns"
        ratio = trie / max(v, 0.1)
        if full and fam == "v4" and n == 1_000_000 and kind in ("cold", "warm"):
            res.target("router", name, v, "ns/lookup", "native", ratio, "trie / ours", ">=",
                       20.0 if kind == "cold" else 10.0)
        elif full and fam == "v6" and n >= 100_000 and kind in ("cold", "warm"):
            res.target("router", name, v, "ns/lookup", "native", ratio, "trie / ours", ">=", 20.0)
        else:
            res.add("router", name, v, "ns/lookup", "native", ratio, "trie / ours")
    for fam, sizes in (("v4", sizes4), ("v6", sizes6)):
        big = sizes[-1]
        w_big, w_1k = table[(fam, big, "warm", "dir")], table[(fam, 1_000, "warm", "dir")]
        row = ("router", f"{fam} warm lookup at {big:,} vs 1,000 routes ({w_1k:.1f} ns)", w_big,
               "ns/lookup", "native", w_big / max(w_1k, 0.1), f"{big:,} / 1k")
        res.target(*row, "<=", 1.3) if full else res.add(*row)
        s = res.series.setdefault("router_routes" if fam == "v4" else "router_routes_v6", {
            "x": list(sizes), "xlabel": f"IPv{fam[1]} routes", "ylabel": "ns/lookup", "logx": True,
            "series": {}})
        for m, label in (("dir", "ours"), ("trie", "LPM trie")):
            for kind in ("warm", "cold"):
                s["series"][f"{label} {kind}"] = [table[(fam, n, kind, m)] for n in sizes]
    if quick:
        res.notes.append(f"--quick: routes up to {sizes4[-1]:,} (v4) / {sizes6[-1]:,} (v6), {ncold} cold "
                         "destinations; the targets are defined at 1M (v4) and 100k / 1M (v6)")
    # whole forward path, next hops carrying the router's MAC (nf/bench/router.py): dir vs trie
    frep, frounds = (100, 5) if quick else (200, 101)
    for name in ("v4 /10", "v4 ecmp", "v6 /48"):
        vals = {}
        for mode in ("dir", "trie"):
            r = rb.bench_router(mode)
            try:
                vals[mode] = rb.forward_ns(r.obj.program("xdp_router"), name, repeat=frep, rounds=frounds)
            finally:
                r.close()
        res.add("router", f"forward path {name} (DIR/trie) vs LPM trie {vals['trie']:.0f} ns",
                vals["dir"], "ns/packet", "native", vals["trie"] / max(vals["dir"], 0.1), "trie / ours")


def load_1m_routes(res: Results, quick: bool) -> None:
    """Time to load 1M IPv4 and 1M IPv6 routes from a route file (generate, then parse +
    validate + build + upload + flip)."""
    if quick:
        return
    from nf.bench.router import load_route_file_s
    for fam, kw in (("IPv4", {"n4": 1_000_000}), ("IPv6", {"n4": 0, "n6": 1_000_000})):
        with tempfile.TemporaryDirectory() as d:
            t = load_route_file_s(Path(d), **kw)
        res.target("router", f"load 1M {fam} routes from the route file (parse+validate+build+flip)",
                   t, "s", "wall", t, "seconds", "<=", 2.0)


def native_switch(res: Results, quick: bool) -> None:
    """The pure switch's ingress per packet on a populated FDB (SwitchSim, trunk ports so one
    frame repeats unchanged): known unicast and broadcast."""
    from nf.config.l2_switch import Variant
    from nf.nfs.l2_switch import SwitchSim
    from nf.bench.l2_switch import SEED, fill, frame as sw_frame, mac as sw_mac, ports as sw_ports
    n_macs = 1_000 if quick else 10_000
    rep, rounds = (2_000, 1) if quick else (100_000, 5)
    with SwitchSim(sw_ports(), fdb_size=16384, variant=Variant.pure, seed=SEED) as sw:
        fill(sw, n_macs)
        f = sw_frame(sw_mac(123), sw_mac(n_macs))
        empty = _empty_ns(f, rep, rounds)
        if sw.ingress.test_run(f).retval != 4:
            raise RuntimeError("switch bench frame was not redirected")
        uni = max(_ns(sw.ingress, [f], rep, rounds) - empty, 0.0)
        flood = max(_ns(sw.ingress, [sw_frame(b"\xff" * 6, sw_mac(n_macs))], rep, rounds) - empty, 0.0)
    res.add("l2_switch", f"pure eBPF known unicast, {n_macs:,} MACs, beyond the empty program",
            uni, "ns/packet", "native")
    res.add("l2_switch", "pure eBPF broadcast (learn refresh + flood verdict), beyond the empty program",
            flood, "ns/packet", "native")


# ---------------------------------------------------------------------------------------------
# guest section: one VM boot for every NF

def guest_all(res: Results, quick: bool, only: tuple[str, ...]) -> None:
    if quick:
        return
    from nf.bpf.build import build
    from nf.vm import Vm, prerequisites
    from nf.vm import insncount
    from nf.vm.runner import repo_python
    missing = prerequisites()
    if missing:
        raise RuntimeError(f"VM tier unavailable: {missing}")
    for o in ("sketch/sketch", "flow_table/flow_table", "flow_table/flow_table_hash",
              "router/router", "l2_switch/l2_switch", "l2_switch/l2_switch_enetstl"):
        build(o)
    out = Path(tempfile.mkdtemp(prefix="nfbench-", dir="/tmp")) / "guest.json"
    t0 = time.monotonic()
    with Vm(insmod=True, **insncount.vm_options()) as vm:
        r = vm.run([repo_python(), "-m", "nf.bench.guest", str(out), *only], timeout=3000,
                   on_output=lambda stream, chunk: stream == "e" and sys.stderr.write(
                       chunk.decode(errors="replace")))
        if r.rc != 0 and not out.exists():
            raise RuntimeError(f"guest benchmark failed (rc {r.rc}): {r.output[-2000:]}")
    try:
        data = json.loads(out.read_text())
    finally:
        import shutil
        shutil.rmtree(out.parent, ignore_errors=True)
    res.notes.append(f"guest: one QEMU TCG boot ({data.get('kernel')}, module loaded, vCPU 1 "
                     f"isolated), {time.monotonic() - t0:.0f} s; instructions per packet beyond "
                     f"the empty XDP program, (C(2N) − C(N)) / N, min over rounds per function")
    for e in data.get("errors", []):
        res.errors.append(f"guest: {e}")
    apply_guest(res, data)
    from nf import variants
    m = res.machine
    res.variants.update(variants.from_guest(data, f"nf bench {m['date']}, guest {data.get('kernel')}"))


def apply_guest(res: Results, data: dict) -> None:
    """Rows, targets and series from nf.bench.guest's JSON."""
    sk = data.get("sketch")
    if sk:
        ds = sorted(int(d) for d in sk["rows"])
        for d in ds:
            row = sk["rows"][str(d)]
            p, e = row["pure"], row["enetstl"]
            what = f"d={d}: eNetSTL vs pure eBPF ({p:.0f}) insns/packet, IPv4 5-tuple"
            if d == 8:       # issue 18 (the eNetSTL paper's 8-hash gain, ~0.33, is out of reach)
                res.target("sketch", what, e, "insns", "guest insns", e / p, "eNetSTL / pure", "<=", 0.5)
            elif d >= 2:
                res.target("sketch", what, e, "insns", "guest insns", e / p, "eNetSTL / pure", "<", 1.0)
            else:
                res.add("sketch", what, e, "insns", "guest insns", e / p, "eNetSTL / pure")
        s = res.series.setdefault("sketch_depth", {"x": list(SK_DEPTHS), "xlabel": "depth d",
                                                   "ylabel": "per packet", "series": {}})
        s["x"] = ds
        s["series"]["pure guest insns"] = [sk["rows"][str(d)]["pure"] for d in ds]
        s["series"]["eNetSTL guest insns"] = [sk["rows"][str(d)]["enetstl"] for d in ds]
        for k, v in sk.get("profiles", {}).items():
            res.profiles[f"sketch: {k}"] = v
    ft = data.get("flow_table")
    if ft:
        ins = ft["insns"]
        loads = ft["loads"]
        for hk, pre in (("mul64, the default", ""), ("crc32c", "crc32c:")):
            for kind in ("hit", "miss"):
                if f"{pre}base/{kind}/75" not in ins:
                    continue
                b = ins[f"{pre}base/{kind}/75"]
                p, e = ins[f"{pre}pure/{kind}/75"] - b, ins[f"{pre}enetstl/{kind}/75"] - b
                res.target("flow_table", f"75 % load, {kind}, hash {hk}: eNetSTL vs pure ({p:.0f}) "
                           "lookup insns (program minus parse/key/exit)", e, "insns", "guest insns",
                           e / p, "eNetSTL / pure", "<=", 0.5)
        for load in loads:
            for kind in ("hit", "miss"):
                h = ins[f"hash/{kind}/{load}"] - ins[f"base/{kind}/{load}"]
                p = ins[f"pure/{kind}/{load}"] - ins[f"base/{kind}/{load}"]
                e = ins[f"enetstl/{kind}/{load}"] - ins[f"base/{kind}/{load}"]
                if load != 75:
                    res.add("flow_table", f"{load} % load, {kind}: eNetSTL vs pure ({p:.0f}) lookup "
                            f"insns; BPF hash {h:.0f}", e, "insns", "guest insns", e / p, "eNetSTL / pure")
        s = res.series.setdefault("cuckoo_load", {"x": loads, "xlabel": "load %",
                                                  "ylabel": "per packet", "series": {}})
        for name, label in (("pure", "pure"), ("enetstl", "eNetSTL"), ("hash", "BPF hash")):
            s["series"][f"{label} hit guest insns"] = [ins[f"{name}/hit/{l}"] - ins[f"base/hit/{l}"]
                                                       for l in loads]
        for k, v in ft.get("profiles", {}).items():
            res.profiles[f"flow_table: {k}"] = v
    rt = data.get("router")
    if rt:
        for k, v in rt["rows"].items():
            if k.endswith("(pure crc)"):
                continue
            pure = rt["rows"].get(k + " (pure crc)")
            if pure:
                res.add("router", f"{k}: module CRC-32C vs pure ({pure:.0f}) insns/packet", v, "insns",
                        "guest insns", v / pure, "eNetSTL / pure")
            else:
                res.add("router", f"{k}: insns/packet (no kfunc on this path)", v, "insns", "guest insns")
        for k, v in rt.get("profiles", {}).items():
            res.profiles[f"router: {k}"] = v
    for nf in ("flow_table", "l2_switch"):
        sc = (data.get(nf) or {}).get("scale") or {}
        for key in sorted(k for k in sc if "/pure/" in k):
            _, size, _, kind = key.split("/")
            p = sc[key]
            for var in sorted({k.split("/")[2] for k in sc} - {"pure"}):
                e = sc.get(f"{nf}/{size}/{var}/{kind}")
                if e is not None:
                    res.add(nf, f"{int(size) / (1 << 20):g}M entries, 75 % full, {kind}: {var} vs pure "
                            f"({p:.0f}) insns/lookup (batch programs)", e, "insns", "guest insns",
                            e / p, f"{var} / pure")
    sw = data.get("l2_switch")
    if sw:
        for case in ("known unicast", "broadcast"):
            p, e = sw["rows"].get(f"pure: {case}"), sw["rows"].get(f"enetstl: {case}")
            if p and e:
                row = ("l2_switch", f"{case}, {sw['macs']:,} MACs: eNetSTL FDB vs pure ({p:.0f}) "
                       "insns/packet", e, "insns", "guest insns", e / p, "eNetSTL / pure")
                res.target(*row, "<=", 0.9) if case == "known unicast" else res.add(*row)
        for k, v in sw.get("profiles", {}).items():
            res.profiles[f"l2_switch: {k}"] = v


# ---------------------------------------------------------------------------------------------
# lab sections (root + netns): nf/bench/lab.py measures, nf/bench/<nf>.py defines the cases

NET_VS_CEILING = 1.15    # every NF's main path: net cost <= this x the ceiling's
SCALING_2CPU = 1.85      # and Mpps on two CPUs >= this x one CPU


def _lab_rows(res: Results, nf: str, v, main: str, baselines: dict[str, float]) -> None:
    """Rows of one lab run `v` (nf.bench.lab.LabRates): the generator's own cost, every case's
    Mpps and net cost, the main path against the ceiling (net cost) and on two CPUs, and the
    baselines (`name -> bound`: baseline net / main net >= bound)."""
    from nf.bench.lab import CEILING, DROP
    g = f"[{v.generator} generator]"
    drop = v.mpps[(DROP, 1)]
    res.add(nf, f"lab {g} generator's own cost: generator -> XDP_DROP on the dut port "
            f"({drop:.2f} Mpps)", 1e3 / drop, "ns/frame", "lab")
    ceil = v.net_ns(CEILING)
    for (case, ncpu), mpps in v.mpps.items():
        if case == DROP or ncpu != 1:
            continue
        net = v.net_ns(case)
        res.add(nf, f"lab {g} {case}: {mpps:.2f} Mpps, net of the generator", net, "ns/frame",
                "lab", *((net / ceil, "x ceiling net") if case != CEILING else ()))
    m = v.net_ns(main)
    res.target(nf, f"lab {g} {main}: net cost vs the ceiling's ({ceil:.0f} ns/frame)", m,
               "ns/frame", "lab", m / ceil, "net / ceiling net", "<=", NET_VS_CEILING)
    for case in (main, CEILING, DROP):
        if (case, 2) in v.mpps:
            sc = v.scaling(case)
            row = (nf, f"lab {g} {case}: 2 CPUs vs 1 ({v.mpps[(case, 1)]:.2f} Mpps)",
                   v.mpps[(case, 2)], "Mpps", "lab", sc, "2 CPUs / 1")
            res.target(*row, ">=", SCALING_2CPU) if case == main else res.add(*row)
    for base, bound in baselines.items():
        b = v.net_ns(base)
        res.target(nf, f"lab {g} {main} vs {base} ({b:.0f} ns/frame): net cost", m, "ns/frame",
                   "lab", b / m, "baseline net / ours", ">=", bound)


def lab_switch(res: Results, quick: bool, generator: str | None = None) -> None:
    from nf.bench import l2_switch as sb
    v = sb.lab_rates(generator=generator)
    _lab_rows(res, "l2_switch", v, sb.UNICAST, {sb.BARE: 1 / 1.1, sb.BRIDGE_UNICAST: 4.0})
    fl = v.net_ns(sb.FLOOD)
    brf = v.net_ns(sb.BRIDGE_FLOOD)
    res.target("l2_switch", f"lab [{v.generator} generator] {sb.FLOOD} vs {sb.BRIDGE_FLOOD} "
               f"({brf:.0f} ns/frame): net cost", fl, "ns/frame", "lab", brf / fl,
               "baseline net / ours", ">=", 3.0)


def lab_router(res: Results, quick: bool, generator: str | None = None) -> None:
    from nf.bench import router as rb
    v = rb.lab_rates(generator=generator)
    _lab_rows(res, "router", v, rb.DIR, {rb.LINUX: 4.0, rb.FIB: 1.4})


def lab_sketch(res: Results, quick: bool, generator: str | None = None) -> None:
    from nf.bench import sketch as kb
    _lab_rows(res, "sketch", kb.lab_rates(generator=generator), kb.LAB_MAIN, {})


def lab_flow_table(res: Results, quick: bool, generator: str | None = None) -> None:
    from nf.bench import flow_table as fb
    _lab_rows(res, "flow_table", fb.lab_rates(generator=generator), fb.LAB_MAIN, {})


# ---------------------------------------------------------------------------------------------

SECTIONS: list[tuple[str, str, Callable]] = [
    ("native", "l2_switch", native_switch),
    ("native", "l2_switch", native_switch_scale),
    ("native", "router", native_router),
    ("native", "sketch", native_sketch),
    ("native", "flow_table", native_flow_table),
    ("native", "flow_table", native_flow_table_scale),
    ("wall", "router", load_1m_routes),
    ("lab", "l2_switch", lab_switch),
    ("lab", "router", lab_router),
    ("lab", "sketch", lab_sketch),
    ("lab", "flow_table", lab_flow_table),
]


def run_suite(quick: bool = False, only: list[str] | tuple[str, ...] | None = None,
              say: Callable[[str], None] = print, guest: bool = True, lab: bool = True,
              generator: str | None = None) -> Results:
    """Run the suite. `only` restricts it to some NFs (names in NFS); `generator` names the lab
    traffic generator (traffic/labgen.py; default: the first this kernel permits). A section
    that fails is recorded in Results.errors (with the reason) and the others still run."""
    only = tuple(only or NFS)
    bad = [n for n in only if n not in NFS]
    if bad:
        raise ValueError(f"unknown NF {bad}: choose from {', '.join(NFS)}")
    if lab and not quick:
        from traffic.labgen import pick
        generator = pick(generator)   # GeneratorUnavailable (with the listing) before any work
    _bpf_stats_off()
    res = Results(quick=quick, machine=machine_info())
    t0 = time.monotonic()
    for kind, nf, fn in SECTIONS:
        if nf not in only or (kind == "lab" and not lab):
            continue
        if kind == "lab" and quick:
            continue
        if kind == "lab" and os.geteuid() != 0:
            res.errors.append(f"{nf} lab: needs root (network namespaces)")
            continue
        t = time.monotonic()
        try:
            fn(res, quick, **({"generator": generator} if kind == "lab" else {}))
        except Exception as e:  # noqa: BLE001 - one section's failure must not lose the others
            res.errors.append(f"{nf} {kind}: {type(e).__name__}: {e}")
            if os.environ.get("NF_DEBUG"):
                traceback.print_exc()
        if not quick or os.environ.get("NF_DEBUG"):
            say(f"bench: {nf} {kind} done in {time.monotonic() - t:.1f} s")
    if guest and not quick:
        t = time.monotonic()
        try:
            guest_all(res, quick, only)
        except Exception as e:  # noqa: BLE001
            res.errors.append(f"guest: {type(e).__name__}: {e}")
        say(f"bench: guest instruction counts done in {time.monotonic() - t:.1f} s")
    res.seconds = time.monotonic() - t0
    return res
