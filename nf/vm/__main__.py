"""python -m nf.vm run [--insmod] [--isolate] [--insncount] [--icount] [--timeout S] [--stats] -- CMD...

Boots the guest, runs CMD in it (cwd: the repo root), streams its output and exits with its
exit code. --stats prints boot time and a round trip to stderr."""
from __future__ import annotations

import argparse
import sys
import time

from nf.vm.runner import Vm, VmError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nf.vm")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot the guest and run a command in it")
    r.add_argument("--insmod", action="store_true", help="load kmod/enetstl.ko at boot")
    r.add_argument("--isolate", action="store_true",
                   help="isolate vCPU 1 (nohz_full isolcpus rcu_nocbs) for measuring")
    r.add_argument("--insncount", action="store_true",
                   help="load the TCG instruction-counting plugin (implies --isolate)")
    r.add_argument("--icount", action="store_true",
                   help="-icount shift=0: one virtual ns per guest instruction (cross-check)")
    r.add_argument("--timeout", type=float, default=600.0, help="command timeout (s)")
    r.add_argument("--stats", action="store_true", help="report boot time and a round trip")
    r.add_argument("--cwd", default=None)
    r.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command given (usage: python -m nf.vm run -- CMD...)")

    def out(stream: str, chunk: bytes) -> None:
        f = sys.stdout.buffer if stream == "o" else sys.stderr.buffer
        f.write(chunk)
        f.flush()

    try:
        with Vm(insmod=a.insmod, isolate=a.isolate, insncount=a.insncount, icount=a.icount) as vm:
            if a.stats:
                t = time.monotonic()
                vm.check(["/bin/true"])
                rt = time.monotonic() - t
                i = vm.info
                print(f"[nf.vm] accel={i.accel} ({i.accel_reason}) kernel={i.uname} "
                      f"boot-to-ready={i.boot_s:.2f}s guest-uptime={i.guest_uptime_s:.2f}s "
                      f"round-trip(/bin/true)={rt * 1000:.0f}ms", file=sys.stderr)
            res = vm.run(cmd, timeout=a.timeout, cwd=a.cwd, on_output=out)
            if res.timed_out:
                print(f"[nf.vm] command timed out after {a.timeout}s", file=sys.stderr)
            return res.rc if res.rc >= 0 else 128 - res.rc
    except VmError as e:
        print(f"[nf.vm] {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
