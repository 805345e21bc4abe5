"""Fixtures shared by tests/nf's CLI test files; their `nf` runner is nf_cli.py beside this file
(appended to sys.path: pytest runs with --import-mode=importlib)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.append(os.path.dirname(__file__))


@pytest.fixture
def rlab(make_lab):
    """A 3-port router lab (LabSpec.router(3)); needs root."""
    from nf.net.lab import LabSpec
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "needs root")
    return make_lab(LabSpec.router(3))
