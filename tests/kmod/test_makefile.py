"""kmod/Makefile and kmod/dkms.conf without a kernel that loads modules: the DKMS source tree
(what a wheel ships, what dkms-install copies to /usr/src), the one version, MODULE_VERSION.
Building and installing through DKMS and loading the result: tests/kmod/test_dkms.py (VM tier)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nf import __version__

KMOD = Path(__file__).resolve().parents[2] / "kmod"


def make(*args, cwd: Path = KMOD) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-s", "-C", str(cwd), *args],
                          capture_output=True, text=True, timeout=120)


def test_dkms_source_is_the_module_sources_with_the_version_filled_in(tmp_path):
    dest = tmp_path / "enetstl"
    r = make("dkms-source", f"DEST={dest}")
    assert r.returncode == 0, r.stderr
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    sources = sorted(p.name for p in KMOD.glob("*.[ch]") if not p.name.endswith(".mod.c"))
    assert files == sorted([*sources, "include/enetstl.h", "Kbuild", "Makefile", "dkms.conf"])
    for f in files:
        if f != "dkms.conf":
            assert (dest / f).read_bytes() == (KMOD / f).read_bytes(), f
    conf = (dest / "dkms.conf").read_text()
    assert conf == (KMOD / "dkms.conf").read_text().replace("#MODULE_VERSION#", __version__)
    # what DKMS reads (sourced by bash, as dkms does)
    got = subprocess.run(["bash", "-c", f"kernel_source_dir=/K; . {dest}/dkms.conf; echo "
                          '"$PACKAGE_NAME|$PACKAGE_VERSION|${BUILT_MODULE_NAME[0]}|'
                          '${DEST_MODULE_LOCATION[0]}|${MAKE[0]}|$AUTOINSTALL|$BUILD_EXCLUSIVE_ARCH"'],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert got == f"enetstl|{__version__}|enetstl|/updates/dkms|make KDIR=/K|yes|^x86_64$"
    # the copy knows its version without the checkout beside it (DKMS builds it in /var/lib/dkms)
    assert make("version-check", cwd=dest).returncode == 0


def test_no_version_is_an_error_not_an_empty_version(tmp_path):
    bare = tmp_path / "kmod"
    shutil.copytree(KMOD, bare, ignore=shutil.ignore_patterns("*.o", "*.ko", ".*.cmd"))
    r = make("dkms-source", f"DEST={tmp_path / 'x'}", cwd=bare)
    assert r.returncode != 0 and "no version" in r.stderr
    assert not (tmp_path / "x").exists()
    assert make("dkms-install", cwd=bare).returncode != 0


def test_built_module_carries_the_version():
    ko = KMOD / "enetstl.ko"
    if not ko.exists() or not shutil.which("modinfo"):
        pytest.skip("kmod/enetstl.ko not built (make -C kmod)")
    r = make()                      # up to date or rebuilt from the current sources
    assert r.returncode == 0, r.stderr
    info = subprocess.run(["modinfo", "-F", "version", str(ko)], capture_output=True, text=True)
    assert info.stdout.strip() == __version__
