"""Named network namespaces, created and entered in-process.

Namespaces live as bind mounts under /run/netns/<name> (the iproute2 layout, so `ip netns list`
sees them). Entering one uses setns(2) on the *calling thread* only: XDP attach, DEVMAP updates,
live-frames test_run, netlink/ethtool/packet sockets all act in the netns of the thread that makes
the call (or creates the socket). `ip netns exec` is never used: it remounts /sys and hides bpffs
pins.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
from collections.abc import Iterator

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(OSError):
    """A namespace could not be created, found, entered or removed."""


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", ".."):
        raise NetnsError(errno.EINVAL, f"invalid netns name {name!r} (use [A-Za-z0-9_.-], 1..200 chars)")
    return name


def netns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, _check_name(name))


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


def exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise NetnsError(e, f"setns({what}) failed: {os.strerror(e)}")


def _ensure_run_dir() -> None:
    # Same dance as iproute2: make /run/netns a shared mount so bind mounts of namespaces
    # propagate to other mount namespaces (and are visible to `ip netns` everywhere).
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    d = NETNS_RUN_DIR.encode()
    if _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if _libc.mount(d, d, b"none", MS_BIND | MS_REC, None) != 0:
        e = ctypes.get_errno()
        raise NetnsError(e, f"cannot bind-mount {NETNS_RUN_DIR}: {os.strerror(e)}")
    if _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) != 0:
        e = ctypes.get_errno()
        raise NetnsError(e, f"cannot make {NETNS_RUN_DIR} shared: {os.strerror(e)}")


def create(name: str) -> str:
    """Create a new, empty named netns (fails if the name exists) and return its path.

    unshare(CLONE_NEWNET) changes only the calling thread's netns; we bind-mount it by name and
    switch the thread back, so the caller's namespace is unchanged afterwards.
    """
    path = netns_path(name)
    _ensure_run_dir()
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o444))
    except FileExistsError:
        raise NetnsError(errno.EEXIST, f"netns {name!r} already exists") from None
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            os.unlink(path)
            raise NetnsError(e, f"unshare(CLONE_NEWNET) failed: {os.strerror(e)}")
        try:
            if _libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None) != 0:
                e = ctypes.get_errno()
                os.unlink(path)
                raise NetnsError(e, f"bind mount of new netns on {path} failed: {os.strerror(e)}")
        finally:
            _setns(saved, "back to the caller's netns")
    finally:
        os.close(saved)
    return path


def remove(name: str, missing_ok: bool = True) -> bool:
    """Unmount and unlink a named netns. The kernel frees it (and destroys its veths, which also
    removes their peers elsewhere) once no process, socket or fd refers to it any more."""
    path = netns_path(name)
    if not os.path.exists(path):
        if missing_ok:
            return False
        raise NetnsError(errno.ENOENT, f"netns {name!r} does not exist")
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e != errno.EINVAL:  # EINVAL: not a mount point (half-created); unlink anyway
            raise NetnsError(e, f"umount {path} failed: {os.strerror(e)}")
    os.unlink(path)
    return True


def open_fd(name: str | None) -> int:
    """An O_RDONLY fd of a named netns (None = the calling thread's current netns)."""
    path = "/proc/thread-self/ns/net" if name is None else netns_path(name)
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetnsError(errno.ENOENT, f"netns {name!r} does not exist") from None


def current_inode() -> int:
    """Inode of the calling thread's netns (identifies it)."""
    return os.stat("/proc/thread-self/ns/net").st_ino


@contextlib.contextmanager
def enter(name: str | None) -> Iterator[None]:
    """Run a block with the calling thread inside netns `name` (None = stay where we are).

    Only this thread moves; it is moved back even when the block raises. Sockets created inside the
    block (pyroute2 IPRoute, ethtool ioctl, AF_PACKET/scapy) stay bound to `name` after the block.
    """
    if name is None:
        yield
        return
    target = open_fd(name)
    saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, name)
        try:
            yield
        finally:
            _setns(saved, "back to the caller's netns")
    finally:
        os.close(saved)
        os.close(target)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (the owner of a namespace named after it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans(owner: "re.Pattern[str]") -> list[str]:
    """Remove the namespaces whose name `owner` matches with a dead process id as group 1 (left
    by a process killed before its cleanup ran); returns their names."""
    removed = []
    for name in list_netns():
        m = owner.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                remove(name)
                removed.append(name)
    return removed

