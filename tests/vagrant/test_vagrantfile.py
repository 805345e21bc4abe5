"""vagrant/Vagrantfile: `vagrant validate` accepts it (no box can be downloaded here, so that is
as far as it can be checked), and rejects a broken copy, so the check is not vacuous."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nf.testing.tiers import require

ROOT = Path(__file__).resolve().parents[2]
VAGRANTFILE = ROOT / "vagrant" / "Vagrantfile"


def _validate(text: str, tmp: Path) -> subprocess.CompletedProcess:
    # A scratch copy: validate creates .vagrant/ next to the Vagrantfile; the synced folder
    # ".." must exist, as it does in the repository.
    d = tmp / "proj" / "vagrant"
    d.mkdir(parents=True)
    (d / "Vagrantfile").write_text(text)
    env = dict(os.environ, VAGRANT_HOME=str(tmp / "vagrant.d"), VAGRANT_CHECKPOINT_DISABLE="1")
    # --ignore-provider: no VirtualBox/libvirt here; their blocks are checked where they exist
    return subprocess.run(["vagrant", "validate", "--ignore-provider"], cwd=d, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def vagrant():
    require(shutil.which("vagrant") is not None, "vagrant not installed (scripts/setup.sh)")


def test_vagrant_validate_accepts_the_vagrantfile(vagrant, tmp_path):
    p = _validate(VAGRANTFILE.read_text(), tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "validated successfully" in p.stdout


def test_vagrant_validate_rejects_a_broken_copy(vagrant, tmp_path):
    broken = VAGRANTFILE.read_text().replace('reboot: true,', 'reboot: true, no_such_option: 1,')
    assert broken != VAGRANTFILE.read_text()
    p = _validate(broken, tmp_path)
    assert p.returncode != 0
    assert "no_such_option" in p.stdout + p.stderr


def test_vagrantfile_does_what_the_readme_promises():
    text = VAGRANTFILE.read_text()
    assert re.search(r'config\.vm\.box = "debian/bookworm64"', text)
    assert "linux-image-6.12-cloud-amd64" in text and "linux-headers-6.12-cloud-amd64" in text
    assert "insmod kmod/enetstl.ko" in text
    assert "./run test" in text and "./run build" in text
