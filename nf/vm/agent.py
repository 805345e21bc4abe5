"""Command agent that runs inside the QEMU guest (stdlib only; started by vagrant/guest-init.sh).

It talks to the host over a virtio-serial port named ``nf.agent`` with JSON lines:

  host -> guest  {"id": n, "argv": [...], "env": {...}, "cwd": "...", "timeout": s}
                 {"id": 0, "shutdown": true}
  guest -> host  {"ready": true, "uname": "...", "boot_s": uptime}     once, at start
                 {"id": n, "o": base64} / {"id": n, "e": base64}          output chunks
                 {"id": n, "rc": code, "timed_out": bool}                 end of a command

One command at a time: the host serialises requests. A command that outlives its timeout is
killed with its whole process group and reported with rc -9.
"""
from __future__ import annotations

import base64
import json
import os
import selectors
import signal
import subprocess
import sys
import time

PORT_NAME = "nf.agent"
# The guest root is the host's, read-only: no bytecode files, a writable home and tmp.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "NF_IN_GUEST": "1",
    # hypothesis keeps its example database in the (read-only) project dir otherwise
    "HYPOTHESIS_STORAGE_DIRECTORY": "/tmp/.hypothesis-guest",
    "LANG": "C.UTF-8",
    # numpy's AVX/AVX2 kernels compute wrong results under this QEMU's TCG (7.2, the first with
    # AVX2): nf.routes.build_v6 built a different IPv6 table in the guest than on the host (259
    # words, 5 of 3,000 lookups wrong) and the same one once these were off
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512VL AVX512BW AVX512DQ AVX512_SKX X86_V4 "
                                "AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR AVX2 X86_V3 FMA3 F16C AVX",
}


def find_port() -> str:
    base = "/sys/class/virtio-ports"
    for _ in range(100):  # the port may appear a little after init starts
        try:
            for dev in os.listdir(base):
                with open(f"{base}/{dev}/name") as f:
                    if f.read().strip() == PORT_NAME:
                        return f"/dev/{dev}"
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"agent: virtio-serial port {PORT_NAME!r} not found")


class Channel:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDWR)
        self.buf = b""

    def send(self, msg: dict) -> None:
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def recv(self) -> dict | None:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                # virtio-serial reads 0 while the host end is disconnected; wait for it.
                time.sleep(0.1)
                continue
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def run(ch: Channel, req: dict) -> None:
    rid = req["id"]
    env = dict(BASE_ENV)
    env.update(req.get("env") or {})
    timeout = req.get("timeout")
    try:
        p = subprocess.Popen(req["argv"], cwd=req.get("cwd") or "/", env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        ch.send({"id": rid, "e": base64.b64encode(f"agent: cannot run {req['argv'][:1]}: {e}\n"
                                                  .encode()).decode()})
        ch.send({"id": rid, "rc": 127, "timed_out": False})
        return
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ, "o")
    sel.register(p.stderr, selectors.EVENT_READ, "e")
    deadline = time.monotonic() + timeout if timeout else None
    timed_out = False
    open_streams = 2
    while open_streams:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        events = sel.select(wait)
        if not events and deadline is not None and time.monotonic() >= deadline:
            timed_out = True
            os.killpg(p.pid, signal.SIGKILL)
            break
        for key, _ in events:
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            ch.send({"id": rid, key.data: base64.b64encode(chunk).decode()})
    rc = p.wait()
    if open_streams == 0:
        # The leader exited and closed its pipes; reap stragglers of its group too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    ch.send({"id": rid, "rc": -9 if timed_out else rc, "timed_out": timed_out})


def main() -> None:
    ch = Channel(find_port())
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    ch.send({"ready": True, "uname": os.uname().release, "boot_s": up, "pid": os.getpid()})
    while True:
        req = ch.recv()
        if req.get("shutdown"):
            ch.send({"id": req.get("id", 0), "rc": 0, "timed_out": False})
            return
        try:
            run(ch, req)
        except Exception as e:  # keep serving: one bad request must not kill the VM
            ch.send({"id": req.get("id"), "e": base64.b64encode(f"agent error: {e!r}\n".encode()).decode()})
            ch.send({"id": req.get("id"), "rc": 126, "timed_out": False})


if __name__ == "__main__":
    main()
    sys.exit(0)
