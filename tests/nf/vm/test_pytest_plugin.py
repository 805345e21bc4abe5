"""nf/vm/pytest_plugin.py: host items report the guest's outcome; the guest runs only vm items."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from nf.testing.tiers import require
from nf.vm import runner

SAMPLE = '''
import os, pytest

@pytest.mark.vm
def test_passes_in_guest():
    assert os.environ["NF_IN_GUEST"] == "1"

@pytest.mark.vm
def test_fails_in_guest():
    assert 6 * 7 == 41, "guest-side failure text"

@pytest.mark.vm
def test_skips_in_guest():
    pytest.skip("no widget in guest")

@pytest.mark.vm
@pytest.mark.parametrize("x", ["a b", "c[1]"])
def test_param(x):
    assert " " in x

def test_host_only():
    assert os.environ.get("NF_IN_GUEST") != "1"
'''


def _project(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "conftest.py").write_text('pytest_plugins = ["nf.testing.plugin"]\n')
    (tmp / "pytest.ini").write_text(textwrap.dedent("""\
        [pytest]
        addopts = -p no:cacheprovider --import-mode=importlib
        markers =
            vm: vm tier
        """))
    (tmp / "test_sample.py").write_text(SAMPLE)
    return tmp


def _pytest(cwd: Path, *args, env=None, timeout=900):
    e = dict(os.environ)
    e.pop("NF_IN_GUEST", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-rA", "-p", "no:randomly", *args],
                          cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


def test_guest_side_deselects_non_vm_items(tmp_path):
    proj = _project(tmp_path / "p")
    p = _pytest(proj, "--collect-only", "-q", env={"NF_IN_GUEST": "1"})
    assert p.returncode == 0, p.stdout + p.stderr
    ids = [l for l in p.stdout.splitlines() if "::" in l]
    assert "test_sample.py::test_host_only" not in ids
    assert "test_sample.py::test_passes_in_guest" in ids
    assert "1 deselected" in p.stdout


def test_host_reports_guest_outcomes():
    missing = runner.prerequisites()
    require(not missing, "; ".join(missing))
    # under /tmp: the guest sees the host /tmp read-write, and the sample project with it
    import tempfile
    proj = _project(Path(tempfile.mkdtemp(prefix="nf-vm-plugin-test-", dir="/tmp")))
    try:
        p = _pytest(proj)
        out = p.stdout + p.stderr
        assert p.returncode == 1, out
        assert "PASSED test_sample.py::test_passes_in_guest" in out
        assert "FAILED test_sample.py::test_fails_in_guest" in out
        assert "guest-side failure text" in out
        assert "SKIPPED" in out and "[guest] no widget in guest" in out
        assert "PASSED test_sample.py::test_param[a b]" in out
        assert "FAILED test_sample.py::test_param[c[1]]" in out
        assert "PASSED test_sample.py::test_host_only" in out  # ran on the host
        assert "vm tier boot: ready in" in out
    finally:
        import re
        import shutil
        shutil.rmtree(proj, ignore_errors=True)
        m = re.search(r"log (/tmp/nf-vm-pytest-\w+)/", p.stdout if "p" in dir() else "")
        if m:  # the guest log is kept because the sample fails on purpose
            shutil.rmtree(m.group(1), ignore_errors=True)


def test_host_collects_only_selected_vm_items(tmp_path):
    """-k/-m deselection happens before the guest run is planned: no guest time for
    tests the user did not select."""
    proj = _project(tmp_path / "p")
    probe = ("import pytest, nf.vm.pytest_plugin as pp\n"
             "class P:\n"
             "    def pytest_collection_finish(self, session):\n"
             "        print('VMITEMS', sorted(i.name for i in session.config.stash[pp._KEY]['items']))\n"
             "pytest.main(['-q', '--collect-only', '-k', 'param'], plugins=[P()])\n")
    e = dict(os.environ)
    e.pop("NF_IN_GUEST", None)
    p = subprocess.run([sys.executable, "-c", probe], cwd=proj, env=e, capture_output=True,
                       text=True, timeout=120)
    line = next(l for l in p.stdout.splitlines() if l.startswith("VMITEMS"))
    assert line == "VMITEMS ['test_param[a b]', 'test_param[c[1]]']", p.stdout
