"""Guest side of `nf bench`: instructions per packet of every NF's pure-eBPF and eNetSTL variants
in one measuring boot (nf/vm/insncount.py; Vm(insmod=True, insncount=True)), with a per-function
profile of where the instructions go.

    python -m nf.bench.guest OUT.json [NF ...]      # inside the guest; writes OUT.json

Every figure is the program's (C(2N) − C(N)) / N minus the empty XDP program's on the same frame,
counted in the same boot. The programs of one NF are loaded before one /proc/kallsyms snapshot
that all its counts share (a kallsyms read takes seconds under TCG).
"""
from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from nf.bench.counter import TOP, Counter


def _log(msg: str) -> None:
    print(f"[guest {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- per NF ----------------------------------------------------------------------------------

def sketch(c: Counter) -> dict:
    from nf.bench import sketch as sb
    from nf.nfs.sketch import Sketch
    frame = sb.frames(1)[0]
    rows, profiles = {}, {}
    for d in sb.DEPTHS:
        row = {}
        for variant in ("pure", "enetstl"):
            with Sketch(sb.cfg(variant, d)).load() as sk, c.snapshot():
                v, prof = c.count(sk.program, frame, top=TOP if d == 8 else 0, expect=2)
            row[variant] = v
            if prof:
                profiles[f"d=8 {variant}"] = prof
        rows[str(d)] = row
        _log(f"sketch d={d}: {row}")
    top = sb.guest_top(c)
    _log(f"sketch top table: {top}")
    return {"rows": rows, "profiles": profiles, "top": top}


def flow_table(c: Counter) -> dict:
    from nf.bench import flow_table as fb
    ins, profiles = fb.guest_counts(c, probes=2, profile=(0.75, TOP))
    # The other key hash (config `hash`), at the target's load: CRC32-C is where the module's
    # SSE4.2 instruction beats BPF, so both hashes are reported side by side.
    crc, _ = fb.guest_counts(c, "crc32c", loads=(0.75,), probes=2,
                             names=("pure", "enetstl", "base"))
    ins.update({f"crc32c:{k}": v for k, v in crc.items()})
    return {"insns": ins, "loads": [int(x * 100) for x in fb.LOADS], "profiles": profiles,
            "scale": _scale(c, "flow_table")}


_SCALE: dict = {}


def _scale(c: Counter, nf: str) -> dict:
    """nf.bench.scale's per-lookup counts at real sizes (both NFs in one pass, kept for the
    other NF's runner)."""
    if not _SCALE:
        from nf.bench import scale
        _SCALE.update(scale.guest_counts(c))
        _log(f"tables at scale: {_SCALE}")
    return {k: v for k, v in _SCALE.items() if k.startswith(nf + "/")}


def router(c: Counter) -> dict:
    from nf.bench.router import bench_frame, bench_router
    rows, profiles = {}, {}
    for mode in ("dir", "trie"):
        for use_module in (True, False):
            r = bench_router(mode, use_module=use_module)
            try:
                with c.snapshot():
                    for name in ("v4 /10", "v4 ecmp", "v6 /48"):
                        if not use_module and "ecmp" not in name:
                            continue
                        # the frame's TTL starts at 255 and each repeat decrements it: N = 100
                        top = TOP if (mode == "dir" and name == "v4 ecmp") else 0
                        v, prof = c.count(r.obj.program("xdp_router"), bench_frame(name), n=100,
                                          top=top, expect=4)
                        key = f"{mode} {name}" + ("" if use_module else " (pure crc)")
                        rows[key] = v
                        if prof:
                            profiles[key] = prof
            finally:
                r.close()
    _log(f"router: {rows}")
    return {"rows": rows, "profiles": profiles}


def l2_switch(c: Counter, n_macs: int = 4096) -> dict:
    from nf.bench.l2_switch import BROADCAST, SEED, fill, frame, mac, ports
    from nf.config.l2_switch import Variant
    from nf.nfs.l2_switch import SwitchSim
    rows, profiles = {}, {}
    for variant in (Variant.pure, Variant.enetstl):
        with SwitchSim(ports(), fdb_size=16384, variant=variant, seed=SEED) as sw:
            fill(sw, n_macs)
            with c.snapshot():
                v, prof = c.count(sw.ingress, frame(mac(1234), mac(n_macs)), top=TOP, expect=4)
                rows[f"{variant.value}: known unicast"] = v
                profiles[f"{variant.value} known unicast"] = prof
                v, _ = c.count(sw.ingress, frame(BROADCAST, mac(n_macs)))
                rows[f"{variant.value}: broadcast"] = v
    _log(f"l2 switch: {rows}")
    return {"rows": rows, "profiles": profiles, "macs": n_macs, "scale": _scale(c, "l2_switch")}


RUNNERS = {"l2_switch": l2_switch, "router": router, "sketch": sketch, "flow_table": flow_table}


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    only = argv[1:] or list(RUNNERS)
    from nf.vm import insncount
    if not insncount.available():
        print("nf.bench.guest runs inside a measuring guest (Vm(insncount=True))", file=sys.stderr)
        return 2
    data: dict = {"kernel": os.uname().release, "errors": []}
    c = Counter()
    try:
        for nf in only:
            t = time.monotonic()
            try:
                data[nf] = RUNNERS[nf](c)
            except Exception as e:  # noqa: BLE001 - record and go on with the other NFs
                traceback.print_exc()
                data["errors"].append(f"{nf}: {type(e).__name__}: {e}")
            _log(f"{nf} done in {time.monotonic() - t:.0f} s")
            out.write_text(json.dumps(data, indent=1))   # partial results survive a later crash
    finally:
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
