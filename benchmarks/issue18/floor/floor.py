"""The floor under the IPv6 lookup (xdp_progs/router/NOTES.md "The floor"): ns per probe of 4
dependent reads in a BPF program, by region size, warm (1,024 probes) and cold (65,536), for the
modes of floor.bpf.c. Native BPF_PROG_TEST_RUN; min over rounds of the median of 3 test_runs of
20 repeats; the loop alone subtracted. Run from the repository root as root:

    .venv/bin/python benchmarks/issue18/floor/floor.py [MiB ...] [--chunks]

--chunks adds mode 3 (one inner map per 32 KiB: creating them takes ~8 ms each here)."""
import mmap
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.getcwd())
import numpy as np                      # noqa: E402

from nf.bpf.build import clang          # noqa: E402
from nf.bpf.maps import Map             # noqa: E402
from nf.bpf.object import BpfObject     # noqa: E402

CW = 8064
HERE = os.path.dirname(os.path.abspath(__file__))


def build(words: int, out: str) -> str:
    subprocess.run([clang(), "-target", "bpf", "-g", "-O2", "-mcpu=v3", f"-DWORDS={words}u",
                    "-I", "/usr/include/x86_64-linux-gnu", "-c", os.path.join(HERE, "floor.bpf.c"),
                    "-o", out], check=True)
    return out


def region(mib: int, modes, rng, tmp: str, rounds: int = 5) -> dict:
    words = -(-(mib << 20) // 4 // CW) * CW          # whole inner values
    obj = BpfObject.open(build(words, os.path.join(tmp, f"floor{mib}.o")))
    inner = []
    try:
        obj.map("flat").set_value_size(words * 4 + (words * 4) % 8)
        obj.load()
        prog, flat, pm = obj.program("floor_walk"), obj.map("flat"), obj.map("probes")
        mm = mmap.mmap(flat.fd, -(-flat.value_size // 4096) * 4096)
        pmm = mmap.mmap(pm.fd, 65536 * 4)
        t = np.frombuffer(mm, np.uint32, count=words)
        t[:] = rng.integers(0, words // 16, size=words, dtype=np.int64) * 16   # a random line
        if 3 in modes:
            enc = (t // CW) << 13 | (t % CW)           # the same targets as (value, offset)
            outer = obj.map("outer")
            for c in range(words // CW):
                m = Map.create("array", 4, CW * 4, 1)
                m.update(bytes(4), enc[c * CW:(c + 1) * CW].tobytes())
                outer.update(c.to_bytes(4, "little"), m)
                inner.append(m)
        pv = np.frombuffer(pmm, np.uint32)
        out = {}
        for n in (1024, 65536):
            starts = (rng.integers(0, words // 16, size=n) * 16).astype(np.uint32)
            best: dict[int, float] = {}
            for _ in range(rounds):
                for mode in (0, *modes):
                    pv[:n] = ((starts // CW) << 13 | (starts % CW)) if mode == 3 else starts
                    frame = n.to_bytes(4, "little") + mode.to_bytes(4, "little") + bytes(56)
                    d = statistics.median(prog.test_run(frame, repeat=20).duration_ns for _ in range(3))
                    best[mode] = min(best.get(mode, d), d)
            out[n] = {m: (best[m] - best[0]) / n for m in modes}
        del t, pv
        mm.close()
        pmm.close()
        return out
    finally:
        for m in inner:
            m.close()
        obj.close()


def main(argv) -> None:
    chunks = "--chunks" in argv
    sizes = [int(a) for a in argv if not a.startswith("--")] or [1, 16, 64, 192]
    modes = (1, 2, 3) if chunks else (1, 2)
    names = {1: "flat", 2: "flat, a branch per read", 3: "32 KiB inner arrays"}
    rng = np.random.default_rng(1)
    print("| region | probes | " + " | ".join(names[m] for m in modes) + " |")
    print("|---|---|" + "---|" * len(modes))
    with tempfile.TemporaryDirectory() as tmp:
        for mib in sizes:
            for n, row in region(mib, modes, rng, tmp).items():
                print(f"| {mib} MiB | {n:,} | " + " | ".join(f"{row[m]:.1f}" for m in modes) + " |",
                      flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
