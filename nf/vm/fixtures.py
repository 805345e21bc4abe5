"""Guest-side fixtures for vm-marked tests: the kfunc module, loaded or absent.

    @pytest.mark.vm
    def test_x(enetstl):                 # module loaded (insmod-ed if needed)
        with enetstl.force_scalar():     # /sys/module/enetstl/parameters/force_scalar = 1
            ...

    @pytest.mark.vm
    def test_y(enetstl_absent):          # module removed for this test, loaded again after

Both restore the state they found (loaded, force_scalar) when the test ends.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = "enetstl"


class ModuleError(RuntimeError):
    pass


class Enetstl:
    """The loaded-or-not state of kmod/enetstl.ko in the running kernel."""

    name = MODULE

    def __init__(self, ko: Path | str = ROOT / "kmod" / "enetstl.ko"):
        self.ko = Path(ko)
        self.sysfs = Path("/sys/module") / MODULE

    @property
    def loaded(self) -> bool:
        return self.sysfs.is_dir()

    def load(self, **params) -> None:
        if self.loaded:
            return
        if not self.ko.exists():
            raise ModuleError(f"{self.ko} not built (make -C kmod)")
        args = [f"{k}={int(v) if isinstance(v, bool) else v}" for k, v in params.items()]
        self._sh(["insmod", str(self.ko), *args])

    def unload(self) -> None:
        """rmmod; fails (ModuleError with rmmod's message) while programs or maps still use it."""
        if self.loaded:
            self._sh(["rmmod", MODULE])

    def param_path(self, name: str) -> Path:
        return self.sysfs / "parameters" / name

    def param(self, name: str) -> str:
        return self.param_path(name).read_text().strip()

    def set_param(self, name: str, value) -> None:
        if isinstance(value, bool):
            value = int(value)
        self.param_path(name).write_text(f"{value}\n")

    @property
    def scalar_forced(self) -> bool:
        return self.param("force_scalar") in ("1", "Y", "y")

    @contextlib.contextmanager
    def force_scalar(self, on: bool = True):
        """Force (or release) the scalar paths for the duration of the block."""
        before = self.scalar_forced
        self.set_param("force_scalar", on)
        try:
            yield self
        finally:
            self.set_param("force_scalar", before)

    @contextlib.contextmanager
    def absent(self):
        """Remove the module for the duration of the block; reload it afterwards if it was
        loaded before."""
        was = self.loaded
        self.unload()
        try:
            yield self
        finally:
            if was:
                self.load()

    @staticmethod
    def _sh(argv: list[str]) -> None:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise ModuleError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")


def _require_guest() -> None:
    if os.environ.get("NF_IN_GUEST") != "1":
        pytest.fail("the enetstl fixtures work only inside the VM guest: mark the test "
                    "@pytest.mark.vm", pytrace=False)


@pytest.fixture
def enetstl():
    _require_guest()
    m = Enetstl()
    m.load()
    scalar = m.scalar_forced if m.param_path("force_scalar").exists() else None
    yield m
    if not m.loaded:
        m.load()
    if scalar is not None and m.scalar_forced != scalar:
        m.set_param("force_scalar", scalar)


@pytest.fixture
def enetstl_absent():
    _require_guest()
    m = Enetstl()
    with m.absent():
        yield m


@pytest.fixture
def insncount():
    """The nf.vm.insncount module, in a guest booted with the counting plugin (the pytest
    integration boots such a guest for tests that request this fixture)."""
    _require_guest()
    from nf.vm import insncount as ic
    if not ic.available():
        pytest.fail("guest booted without the insncount plugin", pytrace=False)
    return ic
