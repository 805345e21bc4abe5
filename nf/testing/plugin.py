"""pytest plugin loaded by tests/conftest.py: tier gating and shared fixtures."""
from __future__ import annotations

import os

import pytest

from nf.testing.tiers import require

pytest_plugins = ["nf.vm.pytest_plugin"]  # vm tier: guest session, enetstl fixtures


def pytest_addoption(parser):
    parser.addoption("--lab-generator", default=None,
                     help="lab traffic generator for the netns tier and the lab benchmarks: live | "
                          "tc (default: every one this kernel permits; benchmarks: the first)")


def pytest_configure(config):
    name = config.getoption("--lab-generator", None)
    if name is not None:
        from traffic.labgen import GeneratorUnavailable, pick
        try:
            pick(name)
        except GeneratorUnavailable as e:
            raise pytest.UsageError(f"--lab-generator: {e}") from None


@pytest.fixture(autouse=True)
def _tier_gate(request):
    if request.node.get_closest_marker("netns"):
        require(os.geteuid() == 0, "the netns tier needs root")
        require(os.path.isdir("/sys/fs/bpf"), "the netns tier needs bpffs at /sys/fs/bpf")
    yield


from nf.testing.lab import generator, lab, lab_generator, make_lab  # noqa: E402,F401
