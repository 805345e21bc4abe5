"""setuptools hook (everything else is in pyproject.toml): a wheel carries what a checkout builds.

build_py also writes the package data of the nf package (not for an editable install, which
runs from the checkout itself):
  nf/_data/bpf/      every xdp_progs/**/*.bpf.c compiled by nf/bpf/build.py, with BUILD.json
                     (clang-19 is needed here, at build time, and never by the installed package)
  nf/_data/configs/  configs/*.yaml: the examples `nf example KIND` prints, and configs/cases/*.yaml:
                     the example case files of `nf test` (their ../<config>.yaml paths still hold)
  nf/_data/kmod/     the module's DKMS source tree (make -C kmod dkms-source), for
                     `python -m nf.kmod dkms-install`
An sdist (MANIFEST.in) carries the sources all three come from, so its wheel is built the same way.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _bpf_build():
    """nf/bpf/build.py by path: importing the nf package would need its dependencies."""
    spec = importlib.util.spec_from_file_location("_nf_bpf_build", ROOT / "nf" / "bpf" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        data = Path(self.build_lib).resolve() / "nf" / "_data"
        shutil.rmtree(data, ignore_errors=True)
        version = self.distribution.get_version()
        manifest = _bpf_build().package(data / "bpf", version)
        print(f"BPF objects: {len(manifest['objects'])}, build {manifest['build_hash']}")
        (data / "configs" / "cases").mkdir(parents=True)
        for f in sorted((ROOT / "configs").glob("*.yaml")) + sorted((ROOT / "configs").glob("cases/*.yaml")):
            shutil.copyfile(f, data / f.relative_to(ROOT))
        subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT / "kmod"), "dkms-source",
                        f"DEST={data / 'kmod'}", f"ENETSTL_VERSION={version}"], check=True)


setup(cmdclass={"build_py": BuildPyWithData})
