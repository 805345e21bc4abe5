"""TRex STL profiles, one per NF (l2_switch, router, sketch, flow_table), and an offline
field-engine expander (fe.expand) that turns a stream's packet + VM instructions into frames.

Each profile is a self-contained file a TRex user runs unchanged (`start -f <file>`); its packets
come from a plain-scapy build_packet(), importable without TRex. See README.md here.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PROFILES = ("l2_switch", "router", "sketch", "flow_table")
DIR = Path(__file__).resolve().parent


def profile_path(name: str) -> Path:
    """The file of a profile, for STLProfile.load_py / `start -f`."""
    if name not in PROFILES:
        raise ValueError(f"unknown TRex profile {name!r} (have: {', '.join(PROFILES)})")
    return DIR / f"{name}.py"


_TREX_MODULES = ("trex_stl_lib", "trex_stl_lib.api", "trex_stl_lib.trex_stl_packet_builder_scapy")


def profile_module(name: str):
    """A profile loaded for its plain-scapy builders (build_packet and helpers), with
    trex_stl_lib hidden even where it is installed: its api module runs `from scapy.all import *`
    and would change scapy's layer bindings for the whole process. Streams come from TRex's own
    loader (STLProfile.load_py), as tests/traffic/test_trex.py does in a subprocess."""
    path = profile_path(name)
    saved = {m: sys.modules.get(m) for m in _TREX_MODULES}
    for m in _TREX_MODULES:
        sys.modules[m] = None  # an import of it raises ImportError
    try:
        spec = importlib.util.spec_from_file_location(f"traffic.trex._builders_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        for m, v in saved.items():
            if v is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = v
    assert mod.STLStream is None
    return mod
