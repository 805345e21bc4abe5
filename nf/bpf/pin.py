"""bpffs layout: one directory per deployed instance, /sys/fs/bpf/xdp-nf/<instance>/.

Maps and links of an instance are pinned there, so the deployment outlives the process that
made it and a later process (the CLI, a second controller) finds it again by instance name.
"""
from __future__ import annotations

import errno as E
import os
import re
from pathlib import Path

from nf.bpf.errors import BpfError

BPFFS = Path(os.environ.get("NF_BPFFS", "/sys/fs/bpf"))
ROOT = BPFFS / "xdp-nf"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def bpffs_mount_of(path: str | os.PathLike) -> str | None:
    """The bpffs mount point containing ``path``, or None when it is not on bpffs."""
    p = os.path.realpath(path)
    best = None
    with open("/proc/self/mounts") as f:
        for line in f:
            dev, mnt, fstype, *_ = line.split()
            mnt = mnt.replace("\\040", " ")
            if (p == mnt or p.startswith(mnt.rstrip("/") + "/")) and (best is None or len(mnt) > len(best[0])):
                best = (mnt, fstype)
    return best[0] if best and best[1] == "bpf" else None


def check_bpffs(path: str | os.PathLike = BPFFS) -> None:
    if bpffs_mount_of(path) is None:
        raise BpfError(E.ENOENT, f"{path} is not on a bpffs mount",
                       hint="mount it: mount -t bpf bpf /sys/fs/bpf (scripts/setup.sh does)")


def _check_name(instance: str) -> None:
    if not _NAME.match(instance or ""):
        raise ValueError(f"invalid instance name {instance!r}: letters, digits, '_', '.', '-', "
                         f"at most 64, not starting with a punctuation mark")


def instance_dir(instance: str, create: bool = True) -> Path:
    """/sys/fs/bpf/xdp-nf/<instance> (mkdir -p when ``create``)."""
    _check_name(instance)
    d = ROOT / instance
    if create:
        check_bpffs(BPFFS)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except PermissionError:
            raise BpfError(E.EPERM, f"cannot create {d}") from None
    return d


def list_instances() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir()) if ROOT.is_dir() else []


def list_pins(instance: str) -> list[str]:
    d = instance_dir(instance, create=False)
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def remove_instance(instance: str) -> bool:
    """Unpin everything of an instance and remove its directory. Unpinning drops the pin's
    reference only: a link pinned here detaches once no process holds an fd to it."""
    d = instance_dir(instance, create=False)
    if not d.exists():
        return False
    for p in sorted(d.rglob("*"), key=lambda x: -len(x.parts)):   # deepest first
        if p.is_dir():
            p.rmdir()
        else:
            p.unlink()
    d.rmdir()
    return True
