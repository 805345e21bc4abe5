"""The measured choice of lab traffic generator (traffic/NOTES.md): each candidate's own cost per
frame, sending 64-byte frames from one lab host pinned to CPU 0 into XDP_DROP (rxcount) on the
dut port, candidates taking turns round by round, median of rounds.

    .venv/bin/python benchmarks/generators/measure.py [--n 1000000] [--rounds 5]

Candidates: the two the project keeps (traffic/labgen.py: live frames, tc clone-redirect) and
the ones it measured against: a C AF_PACKET sender with PACKET_TX_RING or sendmmsg() (both with
PACKET_QDISC_BYPASS; afpacket.c), AF_XDP TX in copy mode through libxdp's xsk API (xsk.c;
Debian's libxdp-dev), and Debian's trafgen (netsniff-ng; TX_RING + qdisc bypass). A candidate
whose tool or kernel support is missing is reported as such. The user-space senders run as a
process per round: its start (a few ms against ~1 s of sending) is included."""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from nf.net.lab import Lab, LabSpec  # noqa: E402
from traffic import labgen  # noqa: E402


def build(tmp: Path) -> dict[str, str | None]:
    """Compiled senders (None: could not be built, with the reason printed)."""
    out = {}
    for name, src, libs in (("afpacket", "afpacket.c", []), ("xsk", "xsk.c", ["-lxdp", "-lbpf"])):
        exe = tmp / name
        r = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(HERE / src), *libs],
                           capture_output=True, text=True)
        out[name] = str(exe) if r.returncode == 0 else None
        if r.returncode:
            print(f"{name}: not built ({r.stderr.strip().splitlines()[-1]})")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as td, Lab(LabSpec.switch(1)) as lab:
        exe = build(Path(td))
        h = lab.host("h1")
        frame = bytes.fromhex("020000000002") + bytes.fromhex(h.mac.replace(":", "")) + \
            bytes.fromhex("0800450000320001000040110000") + bytes(8) + bytes.fromhex("0009000900") \
            + bytes(33)
        frame = frame[:64]
        hexf = Path(td) / "frame.hex"
        hexf.write_text(frame.hex() + "\n")
        ns = ["nsenter", f"--net=/run/netns/{h.netns}", "taskset", "-c", "0"]
        cfg = Path(td) / "trafgen.cfg"
        cfg.write_text("{ " + ", ".join(f"0x{b:02x}" for b in frame) + " }\n")
        cand: dict[str, object] = {}
        for g in labgen.GENERATORS:
            p = labgen.probe(g)
            cand[f"{g} (traffic/labgen.py)"] = g if p.ok else f"unavailable: {p.why}"
        for mode in ("ring", "mmsg"):
            cand[f"AF_PACKET {'TX_RING' if mode == 'ring' else 'sendmmsg'} + qdisc bypass (afpacket.c)"] = \
                ns + [exe["afpacket"], mode, h.ifname, str(a.n)] if exe["afpacket"] else "not built"
        cand["AF_XDP TX, copy mode, libxdp (xsk.c)"] = \
            ns + [exe["xsk"], h.ifname, str(a.n)] if exe["xsk"] else "not built (libxdp-dev?)"
        tg = shutil.which("trafgen")
        cand["trafgen, netsniff-ng (TX_RING + qdisc bypass)"] = \
            ns + [tg, "--dev", h.ifname, "--conf", str(cfg), "--num", str(a.n), "--cpus", "1"] \
            if tg else "not installed (apt install netsniff-ng)"
        ours = {k: v for k, v in cand.items() if isinstance(v, str) and v in labgen.GENERATORS}
        runs: dict[str, list[float]] = {k: [] for k, v in cand.items()
                                        if k in ours or not isinstance(v, str)}
        with labgen.RxCounter(lab.dut, h.port, "drop") as rx:
            gens = {k: labgen.open_generator(h.netns, h.ifname, [frame], generator=v)
                    for k, v in ours.items()}
            try:
                for _ in range(a.rounds):
                    for k in runs:
                        c0 = rx.count()
                        if k in gens:
                            res = gens[k].run(a.n, cpu=0, rx=rx)
                            wall = res.wall_s
                        else:
                            t0 = time.perf_counter()
                            with open(hexf) as f:
                                r = subprocess.run(cand[k], stdin=f, capture_output=True, text=True)
                            wall = time.perf_counter() - t0
                            if r.returncode:
                                raise RuntimeError(f"{k}: {r.stderr.strip()[-300:]}")
                        got = rx.count() - c0
                        if got != a.n:
                            raise RuntimeError(f"{k}: {got} of {a.n} frames arrived")
                        runs[k].append(wall / a.n * 1e9)
            finally:
                for g in gens.values():
                    g.close()
    load = os.getloadavg()[0]
    print(f"generator -> XDP_DROP on the dut port, 64 B, CPU 0, {a.n:,} frames x {a.rounds} rounds "
          f"(median; load average {load:.2f}; {os.uname().release})")
    for k, v in cand.items():
        if k in runs:
            m = statistics.median(runs[k])
            print(f"  {m:7.0f} ns/frame  {1e3 / m:5.2f} Mpps  {k}")
        else:
            print(f"        -              {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
