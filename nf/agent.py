"""`nf agent`: the long-running controller of every deployed NF that needs one after `nf up`
has exited: every deployment (standalone or a chain member) whose KIND has ``due`` and ``tick``.
Today: the sketch's epochs (banks flipped every ``epoch_s`` of its config) and the router's
neighbours (every second the next hops the datapath missed are handed to the kernel to resolve,
and the kernel's usable entries mirrored into the router's table).

    agent = Agent(say=print)
    agent.tick()                 # run every deployment's due work; seconds until the next
    agent.run(stop_event)        # until stop_event is set (SIGTERM/SIGINT in the CLI)

What it guarantees:
- One agent per host: a flock on /run/xdp-nf-agent.lock (NF_AGENT_LOCK), its pid in the file.
  A second `nf agent` exits with the conflict code instead of flipping twice as often.
- Each tick runs under the deployment lock (deploy.locked), like `nf topk --flip`, `nf apply`
  and `nf down`: flips of several processes never interleave and a deployment is never ticked
  while it is being torn down or changed. While another process holds that lock (a long
  `nf up`), due work waits and is retried every 0.2 s; an epoch is recorded with its real length.
- The epoch history lives in the sketch's own pins (``<pin dir>/epochs``, Sketch.epoch_log), not
  in the agent: `nf topk --history`, `nf show` and the metrics of any later process read it, a
  restarted agent carries on from ``epoch_started`` (an epoch that spanned the agent's downtime
  is recorded with its real length), `nf down` removes it with the sketch.
- Nothing lost or counted twice: the bank swap is one update of the ARRAY_OF_MAPS, which returns
  only after every program that could still hold the old bank has finished, so the closed bank is
  complete when it is read; an agent killed anywhere between the swap and the end of the clear
  leaves the closed epoch (with or without packets) in the idle bank, which the next flip records
  if the log lacks it and clears before installing it (Sketch._recover_idle).
"""
from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

AGENT_LOCK = Path(os.environ.get("NF_AGENT_LOCK", "/run/xdp-nf-agent.lock"))
MAX_SLEEP = 1.0            # the deployment list is read again at least this often


class AgentRunning(RuntimeError):
    pass


def running() -> int | None:
    """Pid of the running `nf agent`, or None."""
    try:
        fd = os.open(AGENT_LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            try:
                return int(os.pread(fd, 32, 0).split()[0])
            except (ValueError, IndexError):
                return -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class Agent:
    def __init__(self, say=print, lock_timeout: float = 2.0):
        self.say = say
        self.lock_timeout = lock_timeout
        self.ticks = 0             # ticks that did something (a flip, neighbours synced)
        self._fd: int | None = None

    # ---- the one-agent lock ------------------------------------------------------------------
    def acquire(self) -> None:
        AGENT_LOCK.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(AGENT_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise AgentRunning(f"another nf agent (pid {running()}) holds {AGENT_LOCK}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)        # the kernel drops the flock; a killed agent's too
            self._fd = None

    # ---- epochs ------------------------------------------------------------------------------
    @staticmethod
    def deployments() -> list:
        """(kind, record, config) of every deployment that is up whose NF needs the agent (its
        KIND has ``due`` and ``tick``: sketches and routers, chain members included)."""
        from nf import deploy, engine
        out = []
        for r in deploy.records():
            k = engine.get(r.kind)
            if getattr(k, "due", None) and r.status == "up" and r.pin_dir.exists():
                out.append((k, r, k.validate(r.config, r.name)))
        return out

    def tick(self, now: float | None = None) -> float:
        """Run every deployment's due work (a sketch's flip, a router's neighbour sync); returns
        the seconds until the next one is due."""
        from nf import deploy, engine
        from nf.deploy import StateError
        now = time.time() if now is None else now
        wait = MAX_SLEEP
        for kind, rec, cfg in self.deployments():
            due = kind.due(rec, cfg)
            if now < due:
                wait = min(wait, due - now)
                continue
            try:
                with deploy.locked(self.lock_timeout):
                    cur = deploy.read(rec.name)        # still there, unchanged, after the wait?
                    if cur is None or cur.status != "up" or cur.digest != rec.digest:
                        continue
                    if kind.due(cur, cfg) > time.time():
                        continue                      # someone else did it meanwhile
                    with engine.opened(kind, cur) as h:
                        line = kind.tick(h)
                    wait = min(wait, kind.due(cur, cfg) - time.time())
            except StateError:
                wait = min(wait, 0.2)                 # `nf up`/`apply` holds the lock: soon again
                continue
            except Exception as e:  # noqa: BLE001 - one broken deployment must not stop the rest
                self.say(f"{rec.name}: {kind.tick_what} failed: {type(e).__name__}: {e}")
                continue
            if line:
                self.ticks += 1
                self.say(f"{rec.name}: {line}")
        return max(0.02, wait)

    def run(self, stop: threading.Event, once: bool = False) -> None:
        while not stop.is_set():
            try:
                wait = self.tick()
            except Exception as e:  # noqa: BLE001 - e.g. bpffs briefly unreadable: keep running
                if once:
                    raise
                self.say(f"nf agent: {type(e).__name__}: {e}")
                wait = MAX_SLEEP
            if once:
                return
            stop.wait(wait)
