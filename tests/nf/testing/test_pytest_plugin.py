"""The pytest plugin as a user meets it: examples/user-project (its own configs, tests and case
file, no conftest) copied out of the tree and run with pytest and `nf test`; the fixtures come
from the xdp_nf entry point alone."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nf.testing import pytest_plugin

ROOT = Path(__file__).resolve().parents[3]
PROJECT = ROOT / "examples" / "user-project"


@pytest.fixture
def project(tmp_path):
    dst = tmp_path / "user-project"
    shutil.copytree(PROJECT, dst, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return dst


def pytest_run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_the_entry_point_names_the_public_plugin():
    from importlib.metadata import entry_points
    eps = {e.name: e.value for e in entry_points(group="pytest11")}
    assert eps.get("xdp_nf") == "nf.testing.pytest_plugin" == pytest_plugin.__name__
    assert not (PROJECT / "conftest.py").exists() and not (PROJECT / "tests" / "conftest.py").exists()


@pytest.mark.netns
def test_the_user_project_passes_with_pytest_and_nf_test(project):
    r = pytest_run(project, "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    n = len([t for f in (project / "tests").glob("test_*.py") for t in f.read_text().split("\ndef test_")[1:]])
    assert f"{n} passed" in r.stdout and n == 11
    r = subprocess.run([str(Path(sys.executable).parent / "nf"), "test", "cases.yaml"], cwd=project,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().splitlines()[-1] == "PASS: 2 step(s), 5 check(s)"


def test_without_the_plugin_the_fixtures_are_unknown(project):
    r = pytest_run(project, "-q", "-p", "no:xdp_nf", "tests/test_sketch.py")
    assert r.returncode != 0 and "fixture 'nf_lab' not found" in r.stdout


def test_a_module_without_a_config_is_told_how_to_name_one(project):
    (project / "tests" / "test_bare.py").write_text("def test_x(nf_lab):\n    pass\n")
    r = pytest_run(project, "-q", "tests/test_bare.py")
    assert r.returncode != 0
    assert "nf_lab needs a config: pytestmark = pytest.mark.nf_config(PATH), --nf-config or ini " \
           "nf_config" in r.stdout + r.stderr


def _code(text: str) -> list[str]:
    """Code lines without comments, whitespace and def lines."""
    out = []
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith(("#", "def ")):
            out.append(" ".join(line.split()))
    return out


def test_the_readme_examples_are_the_user_projects_tested_code():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Testing your own configuration")[1].split("\n## ")[0]
    blocks = [b.split("```")[0] for b in section.split("```python\n")[1:]]
    assert len(blocks) == 4                       # router, switch, sketch, flow table
    tested = set(_code("\n".join(f.read_text() for f in (PROJECT / "tests").glob("test_*.py"))))
    for b in blocks:
        assert 5 <= len(b.strip().splitlines()) <= 10
        missing = [line for line in _code(b) if line not in tested]
        assert not missing, missing
