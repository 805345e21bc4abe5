"""The pytest plugin of xdp-nf: fixtures that test your own config on a throwaway lab.

pytest loads it by itself once xdp-nf is installed (entry point ``pytest11: xdp_nf`` in
pyproject.toml); ``-p no:xdp_nf`` turns it off. The tests need root (namespaces, XDP).

    # my_project/tests/test_router.py
    import pytest
    from scapy.all import Ether, IP, UDP
    from nf.testing import Fields

    pytestmark = pytest.mark.nf_config("../router.yaml")     # relative to this file

    def test_routed(nf_lab):
        rt0 = nf_lab.port("rt0")
        rt0.send(Ether(src=rt0.mac, dst=rt0.dut_mac) / IP(src=rt0.ip4, dst="192.168.1.1") / UDP())
        nf_lab.expect("rt1", Fields({"IP.ttl": 63}))
        nf_lab.expect_nothing(["rt0", "rt2"])

Fixtures:
- ``nf_lab``: the NfLab (nf/testing/nflab.py) of the config the module names, one per test
  module (state such as a switch's FDB carries over between its tests; frames do not: each test
  starts with none pending). The config is named by ``pytestmark = pytest.mark.nf_config(PATH)``
  (relative to the test file; ``kind=`` when the file name does not say it), else by
  ``--nf-config PATH`` or the ini value ``nf_config`` (relative to the rootdir).
- ``make_nf_lab``: a factory for a fresh lab per test: ``make_nf_lab(PATH, **NfLab options)``;
  every lab it made is torn down after the test.

Without root the fixtures skip the test (fail it with CI=true, like the project's own tiers).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("xdp-nf", "xdp-nf: testing your own NF configs")
    group.addoption("--nf-config", default=None, help="config file for the nf_lab fixture when "
                    "a test module names none (pytest.mark.nf_config)")
    parser.addini("nf_config", "config file for the nf_lab fixture (relative to the rootdir)",
                  default=None)


def pytest_configure(config):
    config.addinivalue_line("markers", "nf_config(path, kind=None): the config the nf_lab fixture "
                            "deploys for this module (path relative to the test file)")


def _need_root() -> None:
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "nf.testing labs need root (network namespaces, XDP)")
    require(os.path.isdir("/sys/fs/bpf"), "nf.testing labs need bpffs at /sys/fs/bpf")


def _config_of(request) -> tuple[Path, dict]:
    m = request.node.get_closest_marker("nf_config")
    if m is not None:
        if not m.args:
            raise pytest.UsageError("nf_config needs the config's path: pytest.mark.nf_config(PATH)")
        p = Path(m.args[0])
        return (p if p.is_absolute() else Path(request.node.path).parent / p), dict(m.kwargs)
    opt = request.config.getoption("--nf-config") or request.config.getini("nf_config")
    if opt:
        p = Path(opt)
        return (p if p.is_absolute() else Path(request.config.rootpath) / p), {}
    raise pytest.UsageError(f"{request.node.nodeid}: nf_lab needs a config: "
                            "pytestmark = pytest.mark.nf_config(PATH), --nf-config or ini nf_config")


@pytest.fixture(scope="module")
def _nf_module_lab(request):
    from nf.testing.nflab import NfLab
    _need_root()
    path, kw = _config_of(request)
    with NfLab(path, **kw) as lab:
        yield lab


@pytest.fixture
def nf_lab(_nf_module_lab):
    """The module's lab (see the module doc), with no frame pending when the test starts."""
    _nf_module_lab.flush()
    return _nf_module_lab


@pytest.fixture
def make_nf_lab():
    """make_nf_lab(path, **NfLab options) -> NfLab, torn down after the test."""
    from nf.testing.nflab import NfLab
    made = []

    def make(config, **kw):
        _need_root()
        lab = NfLab(config, **kw)
        made.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in reversed(made):
            lab.close()
