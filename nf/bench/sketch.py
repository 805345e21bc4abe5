"""The sketch's benchmark setup (nf bench, nf/bench/guest.py, tests/xdp_progs/sketch/
test_sketch_bench.py): a config per variant and depth, and frames of distinct UDP flows."""
from __future__ import annotations

import ipaddress
import os
import struct

DEPTHS = (1, 2, 4, 8, 16)
WIDTH = 256     # fits a per-CPU bank at d = 16; the width does not change the instruction path
SMAC = bytes.fromhex("020000000001")
DMAC = bytes.fromhex("020000000002")


def cfg(variant: str, d: int, nitro_p: float | None = None):
    """A SketchConfig whose heavy-hitter threshold is never reached (every packet takes the
    same update path); NitroSketch sampling with probability nitro_p when given."""
    from nf.config import validate
    from nf.config.sketch import SketchConfig
    c = {"variant": variant, "depth": d, "width": WIDTH, "threshold": {"absolute": (1 << 32) - 1},
         "seed": 0}      # fixed rows: every run counts the same counters (the runs before keying did)
    if nitro_p is not None:
        c["nitro"] = {"enabled": True, "p": nitro_p}
    return validate(c, SketchConfig)


def raw_frame(f, size: int = 60, smac: bytes = SMAC) -> bytes:
    """A TCP/UDP frame for a traffic.flows.Flow, padded to `size` (checksums zero: XDP parsing
    ignores them)."""
    s, d = ipaddress.ip_address(f.src).packed, ipaddress.ip_address(f.dst).packed
    if f.proto == 6:
        l4 = struct.pack("!HHIIBBHHH", f.sport, f.dport, 1, 0, 5 << 4, 0x02, 8192, 0, 0)
    elif f.proto == 17:
        l4 = struct.pack("!HHHH", f.sport, f.dport, 8, 0)
    else:
        raise ValueError("TCP/UDP only")
    v4 = len(s) == 4
    l4 += bytes(max(0, size - (34 if v4 else 54) - len(l4)))
    if f.proto == 17:
        l4 = l4[:4] + struct.pack("!H", len(l4)) + l4[6:]
    if v4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, f.proto, 0, s, d)
        return DMAC + smac + b"\x08\x00" + ip + l4
    ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4), f.proto, 64, s, d)
    return DMAC + smac + b"\x86\xdd" + ip + l4


def frames(n: int = 8, ipv6: bool = False) -> list[bytes]:
    """n distinct UDP flows (seed 1), one frame each."""
    from traffic.flows import uniform
    return [raw_frame(f) for f in uniform(n, 0, seed=1, protos=(17,), ipv6=ipv6).flows]


def guest_top(c, depths=(4, 8)) -> dict:
    """Inside a measuring guest: the top table's share of a packet. The bench frame's flow is
    held in its CPU's top table (each packet finds it and raises its estimate); a flow below
    the bar (16 flows of 100,000 packets each held first) costs the bar check alone. Instructions
    per packet beyond the empty program, per depth and variant."""
    from nf.nfs.sketch import Sketch
    from nf.vm.insncount import MEASURE_CPU
    out = {}
    heavy = frames(17)
    saved = os.sched_getaffinity(0)
    try:
        for d in depths:
            for variant in ("pure", "enetstl"):
                with Sketch(cfg(variant, d)).load() as sk:
                    held, _ = c.count(sk.program, heavy[0], expect=2)
                    os.sched_setaffinity(0, {MEASURE_CPU})   # the counted CPU's top table
                    for fr in heavy[1:]:
                        sk.program.test_run(fr, repeat=100_000)
                    os.sched_setaffinity(0, saved)
                    light, _ = c.count(sk.program, frames(18)[17], expect=2)
                    held_flows = sk.top_flows()
                    # a held flow's entry is refreshed when its estimate crosses a multiple of
                    # 2^(log2(est) - 5) (top_due): at most 1/32 behind the count
                    if len(held_flows) != 16 or any(e < 100_000 - (100_000 >> 5) for e in held_flows.values()):
                        raise RuntimeError(f"top table not as set up: {held_flows}")
                out[f"d={d} {variant}"] = {"held": held, "below the bar": light}
    finally:
        os.sched_setaffinity(0, saved)
    return out


# ---- where the instructions go: per-phase builds and path crossover (VM, measuring boot) ------
#
#   python -m nf.bench.sketch profile [OUT.json]     # host: boots one measuring guest
#
# Every figure is guest instructions per packet beyond the empty XDP program ((C(2N) - C(N)) / N,
# nf/vm/insncount.py), all in one boot. Phases: sketch.bpf.c built with -DSK_PHASE=n stops after
# phase n, so consecutive differences are the phases' costs.

PHASES = ("stats exit (nothing else)", "parse + flow key", "bank lookups (array-of-maps)",
          "bank totals (packets, total)", "count-min update")
PROFILE_DEPTHS = (1, 2, 3, 4, 5, 6, 7, 8, 16)


def phase_objects(build: bool = True) -> list:
    """sketch.bpf.c built with -DSK_PHASE=0..4 (build/bpf/sketch/phase/sketch_p<n>.o); the
    guest, whose view of the tree is read-only, passes build=False for the host's builds."""
    import subprocess
    from nf.bpf.build import CFLAGS, OUT, SRC, clang
    out = OUT / "sketch" / "phase"
    objs = [out / f"sketch_p{n}.o" for n in range(len(PHASES))]
    if build:
        out.mkdir(parents=True, exist_ok=True)
        for n, o in enumerate(objs):
            subprocess.run([clang(), *CFLAGS, f"-DSK_PHASE={n}", "-c",
                            str(SRC / "sketch" / "sketch.bpf.c"), "-o", str(o)], check=True)
    return objs


def _module_param(name: str, value) -> str | None:
    from pathlib import Path
    p = Path("/sys/module/enetstl/parameters") / name
    if not p.exists():
        return None
    old = p.read_text().strip()
    p.write_text(f"{int(value) if isinstance(value, bool) else value}\n")
    return old


def guest_profile(c, depths=PROFILE_DEPTHS, phase_d: int = 8, top: int = 14) -> dict:
    """Inside a measuring guest (nf.bench.counter.Counter c): per depth, pure eBPF, eNetSTL as
    configured, eNetSTL forced scalar (force_scalar=1) and forced AVX2 (cm_simd_min_d=1);
    function profiles at d=2 and d=phase_d; the phase builds at d=phase_d; IPv6 at 8 and 16."""
    from nf.bpf import BpfObject
    from nf.nfs.sketch import Sketch

    def run(variant, d, obj=None, ipv6=False, prof=False, nitro_p=None):
        class _S(Sketch):
            def _open_object(self):
                return BpfObject.open(str(obj)) if obj else super()._open_object()
        with _S(cfg(variant, d, nitro_p)).load() as sk, c.snapshot():
            return c.count(sk.program, frames(1, ipv6=ipv6)[0], top=top if prof else 0,
                           expect=2)

    out: dict = {"rows": {}, "profiles": {}, "phases": {}, "ipv6": {}}
    for d in depths:
        row = {}
        for name, param, val in (("pure", None, None), ("enetstl", None, None),
                                 ("enetstl scalar", "force_scalar", True),
                                 ("enetstl avx2", "cm_simd_min_d", 1)):
            old = _module_param(param, val) if param else None
            try:
                v, p = run("pure" if name == "pure" else "enetstl", d,
                           prof=d in (2, phase_d) and name in ("pure", "enetstl"))
            finally:
                if param and old is not None:
                    _module_param(param, old)
            row[name] = v
            if p:
                out["profiles"][f"d={d} {name}"] = p
        out["rows"][str(d)] = row
    for n, obj in enumerate(phase_objects(build=False)):
        out["phases"][PHASES[n]] = {v: run(v, phase_d, obj=obj, prof=True)
                                    for v in ("pure", "enetstl")}
    for d in (8, 16):
        out["ipv6"][str(d)] = {v: run(v, d, ipv6=True)[0] for v in ("pure", "enetstl")}
    # NitroSketch p = 1/16 at d = phase_d: a skip is drawn on sampled packets only, so this is
    # the average of ~15 unsampled packets and one sampled packet with its draw (random: the
    # number of draws in N packets varies, ~10 instructions per packet between boots)
    out["nitro"] = {}
    for v in ("pure", "enetstl"):
        val, p = run(v, phase_d, nitro_p=1 / 16, prof=True)
        out["nitro"][v] = val
        out["profiles"][f"nitro 1/16 d={phase_d} {v}"] = p
    return out


def _print_profile(r: dict) -> None:
    print("d  pure  eNetSTL  (scalar  avx2)  eNetSTL/pure")
    for d, row in r["rows"].items():
        print(f"{d:>2} {row['pure']:6.1f} {row['enetstl']:7.1f} ({row['enetstl scalar']:7.1f} "
              f"{row['enetstl avx2']:7.1f})  {row['enetstl'] / row['pure']:.3f}")
    prev = None
    for name, vals in r["phases"].items():
        cur = {v: vals[v][0] for v in vals}
        delta = {v: cur[v] - (prev[v] if prev else 0) for v in cur}
        print(f"phase {name}: " + ", ".join(f"{v} {cur[v]:.1f} (+{delta[v]:.1f})" for v in cur))
        prev = cur
    for k, p in r["profiles"].items():
        print(f"{k}: " + ", ".join(f"{n} {v:g}" for n, v in p if v))
    for d, v in r["ipv6"].items():
        print(f"IPv6 d={d}: {v}")
    print(f"NitroSketch p=1/16: {r.get('nitro')}")


def main(argv: list[str]) -> int:
    import json
    import os
    import sys
    from pathlib import Path
    if argv[:1] == ["--guest"]:
        from nf.bench.counter import Counter
        c = Counter()
        try:
            Path(argv[1]).write_text(json.dumps(guest_profile(c), indent=1))
        finally:
            c.close()
        return 0
    if argv[:1] != ["profile"]:
        print("usage: python -m nf.bench.sketch profile [OUT.json]", file=sys.stderr)
        return 2
    import tempfile
    from nf.bpf.build import build
    from nf.vm import Vm, insncount
    from nf.vm.runner import repo_python
    build("sketch/sketch")
    phase_objects()
    tmp = Path(tempfile.mkdtemp(prefix="sketch-profile-", dir="/tmp")) / "out.json"
    with Vm(insmod=True, **insncount.vm_options()) as vm:
        r = vm.run([repo_python(), "-m", "nf.bench.sketch", "--guest", str(tmp)], timeout=3000)
        if r.rc != 0:
            print(r.output[-3000:], file=sys.stderr)
            return 1
    data = json.loads(tmp.read_text())
    os.unlink(tmp)
    if len(argv) > 1:
        Path(argv[1]).write_text(json.dumps(data, indent=1))
    _print_profile(data)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))


# ---- lab ---------------------------------------------------------------------------------------

LAB_MAIN = "sketch count (d=4, w=1024; every flow flagged, action redirect)"


def lab_cases(lab, es, generator: str) -> dict:
    """Cases (nf.bench.lab.Case) on a LabSpec.switch(2, queues=2) lab, one UDP flow h1 -> h2 per
    CPU: the generator alone, the ceiling, and the sketch on p1. A sketch that monitors passes
    every frame to the dut's stack; to forward at all it must act, so every flow is flagged from
    its first packet (threshold 1) and redirected to p2: each frame is counted in d rows, checked
    against the threshold and looked up in the candidate table, then redirected."""
    import contextlib

    from nf.bench.lab import CEILING, DROP, ONE, TWO, Case, ceiling_case, drop_case, udp_flows
    from nf.config import validate
    from nf.config.sketch import SketchConfig
    from nf.nfs.sketch import Sketch

    frames = udp_flows(lab)

    @contextlib.contextmanager
    def sketch():
        c = validate({"name": f"bench{os.getpid()}", "netns": lab.dut, "interfaces": ["p1"],
                      "attach_mode": "native", "variant": "pure", "depth": 4, "width": 1024,
                      "threshold": {"absolute": 1}, "action": "redirect", "redirect_to": "p2"},
                     SketchConfig)
        with Sketch(c) as sk:         # entering deploys it
            yield sk

    return {DROP: drop_case(lab, frames), CEILING: ceiling_case(lab, frames),
            LAB_MAIN: Case(sketch, frames, cpu_sets=(ONE, TWO))}


def lab_rates(n: int = 400_000, rounds: int = 5, generator: str | None = None):
    from nf.bench.lab import run
    from nf.net.lab import LabSpec
    return run(LabSpec.switch(2, queues=2), lab_cases, generator=generator, n=n, rounds=rounds)
