"""pytest plugin loaded by tests/conftest.py: tier gating and shared fixtures."""
from __future__ import annotations

import os

import pytest

from nf.testing.tiers import require

pytest_plugins = ["nf.vm.pytest_plugin"]  # vm tier: guest session, enetstl fixtures


@pytest.fixture(autouse=True)
def _tier_gate(request):
    if request.node.get_closest_marker("netns"):
        require(os.geteuid() == 0, "the netns tier needs root")
        require(os.path.isdir("/sys/fs/bpf"), "the netns tier needs bpffs at /sys/fs/bpf")
    yield


from nf.testing.lab import lab, make_lab  # noqa: E402,F401  (lab fixtures)
