"""nf.testing: test your own switch, router, sketch or flow-table configuration with scapy.

Public API (stable names; README "Testing your own configuration"):

    from nf.testing import NfLab, Fields
    with NfLab("router.yaml") as lab:                 # a throwaway netns lab built from the file
        rt0 = lab.port("rt0")
        rt0.send(Ether(src=rt0.mac, dst=rt0.dut_mac) / IP(src=rt0.ip4, dst="10.9.1.1") / UDP())
        lab.expect("rt1", Fields({"IP.ttl": 63}))     # or exact frames, byte for byte
        lab.expect_nothing("rt2")

- NfLab, Port, ExpectationError            nf/testing/nflab.py
- Fields                                   nf/testing/expect.py
- assert_packet, run_packet, describe_diff, Case, run_cases, XdpAction
                                           nf/testing/harness.py (BPF_PROG_TEST_RUN, byte-exact)
- run_case_file, load_case_file, junit     nf/testing/cases.py (what `nf test` runs)
- pytest fixtures nf_lab / make_nf_lab     nf/testing/pytest_plugin.py (loaded by pytest through
                                           the "xdp_nf" entry point once xdp-nf is installed)

The rest of this package is the project's own test support (tier gating, lab fixtures of our
tests: nf/testing/plugin.py), not public. Names load lazily: importing nf.testing costs nothing.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "NfLab": ("nf.testing.nflab", "NfLab"),
    "Port": ("nf.testing.nflab", "Port"),
    "ExpectationError": ("nf.testing.nflab", "ExpectationError"),
    "Fields": ("nf.testing.expect", "Fields"),
    "assert_packet": ("nf.testing.harness", "assert_packet"),
    "run_packet": ("nf.testing.harness", "run_packet"),
    "describe_diff": ("nf.testing.harness", "describe_diff"),
    "Case": ("nf.testing.harness", "Case"),
    "run_cases": ("nf.testing.harness", "run_cases"),
    "XdpAction": ("nf.datapath", "XdpAction"),
    "run_case_file": ("nf.testing.cases", "run"),
    "load_case_file": ("nf.testing.cases", "load"),
    "junit": ("nf.testing.cases", "junit"),
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        mod, attr = _WHERE[name]
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nf.testing' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
