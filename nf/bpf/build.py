"""Ahead-of-time build of the BPF C under xdp_progs/ with clang-19.

Every ``xdp_progs/**/<name>.bpf.c`` becomes ``build/bpf/<same path>/<name>.o``. clang writes a
dependency file next to each object (-MD), so an object is rebuilt when its source, any header it
includes, or the compiler flags change. Kernel types come from the uapi headers of linux-libc-dev
(struct xdp_md, ethhdr, iphdr, ...), not from a vmlinux.h of the build host: XDP programs need only
uapi types, and the same objects then load on the host kernel and on the guest's 6.12 kernel.

    python -m nf.bpf.build            # build everything
    python -m nf.bpf.build l2_switch  # build objects whose path contains "l2_switch"
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "xdp_progs"
OUT = Path(os.environ.get("NF_BUILD_DIR", ROOT / "build")) / "bpf"

CLANG_CANDIDATES = ("clang-19", "clang")
CFLAGS = [
    "-target", "bpf", "-g", "-O2", "-mcpu=v3",
    "-D__TARGET_ARCH_x86",
    "-Wall", "-Werror", "-Wno-unused-function",
    "-I", str(SRC / "include"),
    "-I", str(ROOT / "kmod" / "include"),
    "-I", "/usr/include/x86_64-linux-gnu",
]


class BuildError(RuntimeError):
    """clang failed; the message carries its diagnostics."""


def clang() -> str:
    for c in CLANG_CANDIDATES:
        path = shutil.which(c)
        if path:
            return path
    raise BuildError("clang-19 not found: run scripts/setup.sh (installs clang-19 from Debian)")


def sources(match: str | None = None) -> list[Path]:
    found = sorted(SRC.rglob("*.bpf.c"))
    if match:
        found = [p for p in found if match in str(p.relative_to(SRC))]
    return found


def object_path(src: Path) -> Path:
    rel = src.relative_to(SRC)
    return OUT / rel.parent / (rel.name[: -len(".bpf.c")] + ".o")


def _flags_digest(cc: str) -> str:
    return hashlib.sha1(" ".join([cc, *CFLAGS]).encode()).hexdigest()[:16]


def _deps(depfile: Path) -> list[Path]:
    text = depfile.read_text().replace("\\\n", " ")
    _, _, rhs = text.partition(":")
    return [Path(tok) for tok in rhs.split()]


def _stale(obj: Path, depfile: Path, stamp: Path, digest: str) -> bool:
    if not (obj.exists() and depfile.exists() and stamp.exists()):
        return True
    if stamp.read_text() != digest:
        return True
    t = obj.stat().st_mtime
    try:
        return any(d.stat().st_mtime > t for d in _deps(depfile))
    except FileNotFoundError:  # a header went away
        return True


def build_one(src: Path, force: bool = False) -> Path:
    """Compile one source if stale; return the object path."""
    src = Path(src).resolve()
    cc = clang()
    obj = object_path(src)
    depfile, stamp = obj.with_suffix(".d"), obj.with_suffix(".flags")
    digest = _flags_digest(cc)
    if os.environ.get("NF_IN_GUEST") == "1":
        # The guest sees the host root read-only: the host built everything before booting,
        # and a source edited since then must not make every guest test fail on a write.
        if obj.exists():
            return obj
        raise BuildError(f"{obj} was not built on the host before the guest booted")
    if not force and not _stale(obj, depfile, stamp, digest):
        return obj
    obj.parent.mkdir(parents=True, exist_ok=True)
    tmp = obj.with_suffix(f".o.{os.getpid()}.tmp")
    cmd = [cc, *CFLAGS, "-MD", "-MF", str(depfile), "-MT", str(obj), "-c", str(src), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"clang failed for {src.relative_to(ROOT)}:\n{proc.stderr.strip()}")
    os.replace(tmp, obj)  # atomic: a concurrent reader never sees half an object
    stamp.write_text(digest)
    return obj


def build(name: str) -> Path:
    """Build and return the object for ``xdp_progs/<name>.bpf.c`` (name like "l2_switch/l2_switch")."""
    src = SRC / f"{name}.bpf.c"
    if not src.exists():
        raise BuildError(f"no BPF source {src.relative_to(ROOT)}")
    return build_one(src)


def build_all(match: str | None = None, force: bool = False) -> list[Path]:
    return [build_one(s, force) for s in sources(match)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    force = "--force" in argv
    args = [a for a in argv if a != "--force"]
    try:
        objs = build_all(args[0] if args else None, force)
    except BuildError as e:
        print(e, file=sys.stderr)
        return 1
    for o in objs:
        print(o.relative_to(ROOT) if o.is_relative_to(ROOT) else o)
    return 0


if __name__ == "__main__":
    sys.exit(main())
