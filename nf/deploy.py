"""Deployment state: which NF instances are up, from which file, on which interfaces, which variant.

    with deploy.locked():                      # one `nf` process changes state at a time
        deploy.write(Record(name="l2sw", kind="l2_switch", ...))
        deploy.read("l2sw"); deploy.records(); deploy.remove("l2sw")

Where it lives and why: bpffs holds only BPF objects (no regular files), and the state must
outlive the `nf` process exactly as long as the pinned maps and links it describes, across a
reboot of nothing but that bpffs. So each record is a JSON document stored in a one-entry
BPF ARRAY map pinned at ``/sys/fs/bpf/xdp-nf-state/<instance>``, next to (not inside) the
instance's own pin directory ``/sys/fs/bpf/xdp-nf/<instance>/`` that its controller owns and
removes on down. A record is replaced by pinning a fresh map under a temporary name and
renaming it over the old pin (bpffs rename is atomic), so a reader never sees half a record.

Crash safety: ``nf up`` writes the record with ``status="deploying"`` *before* the controller
loads anything and flips it to ``"up"`` afterwards. A process killed in between leaves a
record whose pid is dead; ``nf down`` then tears down whatever pins exist (links detached from
their pins, maps unpinned) whatever the status, and finally drops the record. Pin directories
with no record at all (a controller used directly, or a crash before the record) are "orphans"
and are cleaned the same generic way (``cleanup_pins``).

``write_doc(path, dict)`` / ``read_doc(path)`` are the same storage for any JSON document a
controller keeps next to its maps (the sketch's epoch log, ``<pin dir>/epochs``).
"""
from __future__ import annotations

import contextlib
import errno as E
import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nf.bpf import pin as _pin

_HDR = 4           # u32 length of the JSON document, then the document
_PAGE = 4096
_CHUNK = 1 << 20   # largest value of a record's map (a larger record spans several entries)
LOCK_PATH = Path(os.environ.get("NF_LOCK", "/run/xdp-nf.lock"))


# Every step at which a state change can be cut short, in the order `nf` passes them (the
# fault-injection tests kill `nf` at each: tests/nf/test_cli_faults.py).
CRASH_STEPS = {
    "before-up": "up: the record written (deploying), nothing loaded",
    "up-loaded": "up: maps created and pinned, program loaded, nothing filled",
    "up-filled": "up: maps filled, nothing attached",
    "up-attached": "up: attached on some interfaces (the first), not all",
    "after-up": "up: everything attached, the record still says deploying",
    "apply-marked": "apply: the record says applying, nothing changed",
    "apply-swapped": "apply: the new program runs, runtime fields not changed yet",
    "apply-changed": "apply: every change made, the record has the old config",
    "verb-marked": "routes/neigh/flows: the record marked as edited, the table not changed",
    "verb-done": "routes/neigh/flows: the table changed",
    "down-detached": "down: links detached, pins still there",
    "down-unpinned": "down: pins gone, the record still there",
}


def crash_point(stage: str) -> None:
    """Test hook: NF_TEST_CRASH_AT=<stage> (one of CRASH_STEPS) SIGKILLs this process there."""
    if os.environ.get("NF_TEST_CRASH_AT") == stage:
        assert stage in CRASH_STEPS, stage
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def state_root() -> Path:
    """/sys/fs/bpf/xdp-nf-state (follows NF_BPFFS like nf.bpf.pin)."""
    return _pin.BPFFS / "xdp-nf-state"


def digest(config: dict) -> str:
    """Stable hash of a validated config (canonical JSON): "same file" means same digest."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass
class Record:
    name: str                       # instance name (pins under /sys/fs/bpf/xdp-nf/<name>)
    kind: str                       # nf.engine kind: an NF module of nf/nfs/, or "chain"
    source: str                     # absolute path of the config file ("" when built in code)
    config: dict                    # the validated config, JSON-ready (what `apply` diffs against)
    netns: str | None = None
    interfaces: list[str] = field(default_factory=list)
    mode: str = "auto"              # requested attach mode
    variant: str = "auto"           # resolved datapath variant
    status: str = "deploying"       # deploying | up | applying | failed (an apply, half way)
    pid: int = 0                    # the `nf` process that last changed the record
    created: float = 0.0
    updated: float = 0.0
    chain: dict | None = None       # {iface: position} when the NF sits in a chain
    extra: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest(self.config)

    @property
    def pin_dir(self) -> Path:
        return _pin.ROOT / self.name

    def owner_alive(self) -> bool:
        if not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def stale(self) -> bool:
        """A change that never finished: its process is gone but the status is not "up", or
        it failed half way ("failed")."""
        return self.status == "failed" or (self.status != "up" and not self.owner_alive())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, b: bytes) -> "Record":
        d = json.loads(b)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


class StateError(RuntimeError):
    """Deployment state is missing, unreadable or held by another process."""


# ---- storage ---------------------------------------------------------------------------------
def _path(name: str) -> Path:
    _pin._check_name(name)
    return state_root() / name


def write_doc(path: Path, doc: dict, name: str = "nf_state") -> None:
    """Store a JSON document as a one-entry BPF ARRAY pinned at ``path`` (a fresh map pinned
    under a temporary name, then renamed over the old pin: a reader never sees half of it)."""
    from nf.bpf import Map

    raw = json.dumps(doc, sort_keys=True).encode()
    blob = len(raw).to_bytes(_HDR, "little") + raw
    # one value up to _CHUNK (the kernel refuses values over KMALLOC_MAX_SIZE), else several
    size = min(-(-len(blob) // _PAGE) * _PAGE, _CHUNK)
    n = -(-len(blob) // size)
    blob += bytes(n * size - len(blob))
    m = Map.create("array", 4, size, n, name=name)
    try:
        for i in range(n):
            m.update(i.to_bytes(4, "little"), blob[i * size:(i + 1) * size])
        # bpffs refuses names with a dot (EPERM); instance names never start with "_"
        tmp = path.parent / f"_tmp{os.getpid()}_{path.name.replace('.', '_')}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        m.pin(tmp)
        os.rename(tmp, path)
    finally:
        m.close()


def read_doc(path: Path) -> dict | None:
    """The document write_doc stored at ``path`` (None when there is no pin)."""
    from nf.bpf import Map, BpfError

    if not path.exists():
        return None
    try:
        m = Map.from_pin(path)
    except BpfError as e:
        raise StateError(f"{path} is unreadable: {e}") from None
    try:
        raw = m.lookup(b"\0\0\0\0")
        n = int.from_bytes(raw[:_HDR], "little")
        chunks = [raw] + [m.lookup(i.to_bytes(4, "little"))
                          for i in range(1, -(-(n + _HDR) // len(raw)))]
        raw = b"".join(chunks)
    finally:
        m.close()
    try:
        return json.loads(raw[_HDR:_HDR + n])
    except ValueError as e:
        raise StateError(f"{path} is corrupt: {e}") from None


def write(rec: Record) -> None:
    """Store (or atomically replace) the record of an instance."""
    _pin.check_bpffs(_pin.BPFFS)
    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    rec.created = rec.created or now
    rec.updated = now
    rec.pid = os.getpid()
    write_doc(_path(rec.name), asdict(rec))


def read(name: str) -> Record | None:
    try:
        d = read_doc(_path(name))
    except StateError as e:
        raise StateError(f"deployment record: {e}") from None
    if d is None:
        return None
    try:
        known = {f for f in Record.__dataclass_fields__}
        return Record(**{k: v for k, v in d.items() if k in known})
    except TypeError as e:
        raise StateError(f"deployment record {_path(name)} is corrupt: {e}") from None


def names() -> list[str]:
    root = state_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("_"))


def records() -> list[Record]:
    out = []
    for n in names():
        r = read(n)
        if r is not None:
            out.append(r)
    return out


def remove(name: str) -> bool:
    try:
        _path(name).unlink()
        return True
    except FileNotFoundError:
        return False


def orphans() -> list[str]:
    """Instance pin directories that no record describes."""
    have = set(names())
    return [n for n in _pin.list_instances() if n not in have]


def cleanup_pins(name: str) -> dict[str, int]:
    """Generic teardown of an instance's pins, for any NF and any crash point: every pinned
    link is detached (a link detaches from its fd in any netns), everything else (maps,
    programs) is unpinned, then the directory goes. Returns counts."""
    d = _pin.ROOT / name
    out = {"links": 0, "pins": 0}
    if not d.exists():
        return out
    pins = [p for p in sorted(d.rglob("*"), key=lambda x: -len(x.parts)) if not p.is_dir()]
    for p in pins:                       # every link first: the interfaces are free at once
        out["links"] += _detach(p)
    crash_point("down-detached")
    for p in pins:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
        out["pins"] += 1
    shutil.rmtree(d, ignore_errors=True)
    return out


def problems(rec: Record) -> list[str]:
    """Where the kernel disagrees with an "up" record: its pins, its entry program, and on every
    interface a pinned link that still holds it with the program the link carries (a chain
    member runs in its chain's slot: its pins only). Empty: the record tells the truth."""
    from nf.bpf import BpfError, Link, xdp_query
    from nf.net import netns as _ns

    if rec.status != "up":
        return [f"status {rec.status}" + (f" and its process (pid {rec.pid}) is gone"
                                          if not rec.owner_alive() else "")]
    d = rec.pin_dir
    if not d.is_dir():
        return [f"its pins are gone ({d})"]
    if rec.kind != "chain" and not (d / "prog").exists():
        return [f"its program pin {d / 'prog'} is gone"]
    if rec.chain:
        return []
    if rec.netns is not None and not _ns.exists(rec.netns):
        return [f"network namespace {rec.netns!r} is gone"]
    bad = []
    for i in rec.interfaces:
        lp = d / "links" / i
        if not lp.exists():
            bad.append(f"{i}: no pinned link")
            continue
        try:
            with contextlib.closing(Link.from_pin(lp)) as link:
                if link.defunct:
                    bad.append(f"{i}: its link is defunct (interface deleted?)")
                    continue
                want = link.prog_id
            with _ns.enter(rec.netns):
                q = xdp_query(i)
        except (BpfError, ValueError, OSError) as e:
            bad.append(f"{i}: {str(e).splitlines()[0]}")
            continue
        if want not in q.prog_ids().values() and q.prog_id != want:
            bad.append(f"{i}: runs " + (f"program #{q.prog_id or max(q.prog_ids().values())}"
                                        if q.attached else "no XDP program")
                       + f", not its link's #{want}")
    return bad


def _detach(p: Path) -> int:
    """Detach the link pinned at ``p`` (1), or nothing when it pins no link (0)."""
    from nf.bpf import BpfError, Link
    try:
        link = Link.from_pin(p)
    except (BpfError, ValueError):   # ValueError: a link whose interface is gone (ifindex 0)
        fd = _open_pin(p)
        if fd is None:
            return 0
        try:
            if _fd_kind(fd) == "link":
                from nf.bpf import libbpf as L
                L.bpf_link_detach(fd)
                return 1
            return 0
        finally:
            os.close(fd)
    try:
        if _fd_kind(link.fd) == "link":
            with contextlib.suppress(BpfError):
                link.detach()
            return 1
        return 0
    finally:
        link.close()


def _open_pin(p: Path) -> int | None:
    from nf.bpf import libbpf as L
    fd = L.bpf_obj_get(os.fsencode(p))
    return fd if fd >= 0 else None


def _fd_kind(fd: int) -> str:
    """"link" / "map" / "prog" from /proc/self/fdinfo (bpf's get_info calls accept any BPF fd,
    so they cannot tell a pinned map from a pinned link)."""
    try:
        text = Path(f"/proc/self/fdinfo/{fd}").read_text()
    except OSError:
        return "?"
    for key, kind in (("link_type:", "link"), ("map_type:", "map"), ("prog_type:", "prog")):
        if key in text:
            return kind
    return "?"


@contextlib.contextmanager
def locked(timeout: float = 10.0):
    """Serialise state changes between `nf` processes (a flock on /run/xdp-nf.lock; the kernel
    drops it when a holder dies, so a killed `nf` never blocks the next one)."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (E.EAGAIN, E.EACCES) or time.monotonic() > deadline:
                    raise StateError(f"another nf process holds {LOCK_PATH}") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)
