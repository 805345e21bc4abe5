"""The BPF objects: compiled from xdp_progs/ with clang-19 in a checkout, shipped in a wheel.

Where they come from:
- **source tree** (a checkout, an editable install: xdp_progs/ next to nf/): every
  ``xdp_progs/**/<name>.bpf.c`` becomes ``build/bpf/<same path>/<name>.o`` on first use. clang
  writes a dependency file next to each object (-MD), so an object is rebuilt when its source, any
  header it includes, or the compiler flags change.
- **package data** (an installed wheel, no xdp_progs/): the objects setup.py compiled into
  ``nf/_data/bpf/`` when the wheel was built, found through importlib.resources, with BUILD.json
  (version, clang, per-object sha256, build hash). clang is then never run.

Kernel types come from the uapi headers of linux-libc-dev (struct xdp_md, ethhdr, iphdr, ...), not
from a vmlinux.h of the build host: XDP programs need only uapi types, so one build loads on every
kernel (the host's 6.18 and the guest's 6.12 run the same objects). Paths are mapped to the tree
(-ffile-prefix-map, clang run from the root), so the same sources and clang give the same bytes
wherever they are built: a wheel's build hash equals a checkout's.

    python -m nf.bpf.build            # build everything
    python -m nf.bpf.build l2_switch  # build objects whose path contains "l2_switch"
    python -m nf.bpf.build --origin   # where the objects come from and their build hash

This file uses the standard library only: setup.py loads it by path to build a wheel.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "xdp_progs"
OUT = Path(os.environ.get("NF_BUILD_DIR", ROOT / "build")) / "bpf"
PACKAGE_DATA = "bpf"   # a wheel carries the objects in nf/_data/bpf (nf/data.py)
MANIFEST = "BUILD.json"

CLANG_CANDIDATES = ("clang-19", "clang")
CFLAGS = [
    "-target", "bpf", "-g", "-O2", "-mcpu=v3",
    "-D__TARGET_ARCH_x86",
    "-Wall", "-Werror", "-Wno-unused-function",
    f"-ffile-prefix-map={ROOT}=.",
    "-I", str(SRC / "include"),
    "-I", str(ROOT / "kmod" / "include"),
    "-I", "/usr/include/x86_64-linux-gnu",
]


class BuildError(RuntimeError):
    """clang failed; the message carries its diagnostics."""


def find_clang() -> str | None:
    return next((p for p in map(shutil.which, CLANG_CANDIDATES) if p), None)


def clang() -> str:
    path = find_clang()
    if path is None:
        raise BuildError("clang-19 not found: run scripts/setup.sh (installs clang-19 from Debian)")
    return path


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
    # From the root, so the debug info's compilation dir is mapped too (-ffile-prefix-map).
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BuildError(f"clang failed for {src.relative_to(ROOT)}:\n{proc.stderr.strip()}")
    os.replace(tmp, obj)  # atomic: a concurrent reader never sees half an object
    stamp.write_text(digest)
    return obj


def build(name: str) -> Path:
    """The object for ``xdp_progs/<name>.bpf.c`` (name like "l2_switch/l2_switch"): built when
    stale in a source tree, else the one the installed package carries."""
    if not SRC.is_dir():
        return packaged(name)
    src = SRC / f"{name}.bpf.c"
    if not src.exists():
        raise BuildError(f"no BPF source {name}.bpf.c in {SRC}")
    return build_one(src)


def package_dir() -> Path | None:
    """nf/_data/bpf of an installed wheel, through importlib.resources (None in a checkout)."""
    from nf.data import package_data
    return package_data(PACKAGE_DATA)


def packaged(name: str) -> Path:
    d = package_dir()
    if d is None:
        raise BuildError(f"no BPF objects: no source tree at {SRC} and no package data "
                         "(nf/_data/bpf); reinstall xdp-nf from its wheel")
    obj = d / f"{name}.o"
    if not obj.is_file():
        raise BuildError(f"the installed xdp-nf has no BPF object {name}.o (in {d})")
    return obj


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_hash(objects: dict[str, str]) -> str:
    """One hash for a set of objects ({relative path: sha256}), the same for a checkout's build
    and a wheel's package data when both come from the same sources and clang."""
    text = "".join(f"{rel} {digest}\n" for rel, digest in sorted(objects.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def clang_version(cc: str | None = None) -> str:
    out = subprocess.run([cc or clang(), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else "unknown"


def package(dest: Path, version: str) -> dict:
    """Build every object (only the stale ones are compiled) and copy them into ``dest`` (a
    wheel's nf/_data/bpf) with BUILD.json; returns that manifest. Called by setup.py."""
    objects = {}
    for src in sources():
        obj = build_one(src)
        rel = obj.relative_to(OUT).as_posix()
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(obj, dest / rel)
        objects[rel] = _sha256(obj)
    manifest = {"version": version, "clang": clang_version(),
                "cflags": [f.replace(str(ROOT), ".") for f in CFLAGS],
                "build_hash": build_hash(objects), "objects": objects}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def origin() -> dict:
    """Where build() takes objects from and their build hash (`nf check`):
    {"from": "source", "dir", "sources", "objects", "missing", "stale", "clang", "build_hash"} or
    {"from": "package", "dir", "objects", "build_hash", "verified", "differ", "clang", "version"}
    ("verified": every shipped object still has the sha256 BUILD.json lists) or {"from": None}."""
    if SRC.is_dir():
        cc = find_clang()
        digest = _flags_digest(cc) if cc else None
        built, missing, stale = {}, 0, 0
        for src in sources():
            obj = object_path(src)
            if not obj.exists():
                missing += 1
                continue
            built[obj.relative_to(OUT).as_posix()] = _sha256(obj)
            stale += digest is not None and _stale(obj, obj.with_suffix(".d"), obj.with_suffix(".flags"),
                                                   digest)
        return {"from": "source", "dir": str(OUT), "sources": str(SRC), "objects": len(built),
                "missing": missing, "stale": stale if cc else None, "clang": cc,
                "build_hash": build_hash(built) if built else None}
    d = package_dir()
    if d is None:
        return {"from": None, "dir": None, "build_hash": None}
    try:
        manifest = json.loads((d / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    listed = manifest.get("objects", {})
    actual = {p.relative_to(d).as_posix(): _sha256(p) for p in sorted(d.rglob("*.o"))}
    differ = sorted(k for k in set(listed) | set(actual) if listed.get(k) != actual.get(k))
    return {"from": "package", "dir": str(d), "objects": len(actual),
            "build_hash": manifest.get("build_hash"), "verified": bool(listed) and not differ,
            "differ": differ, "clang": manifest.get("clang"), "version": manifest.get("version")}


def build_all(match: str | None = None, force: bool = False) -> list[Path]:
    return [build_one(s, force) for s in sources(match)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--origin" in argv:
        print(json.dumps(origin(), indent=1))
        return 0
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
