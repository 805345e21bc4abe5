"""TRex STL profiles, one per NF (l2_switch, router, sketch, flow_table), and an offline
field-engine expander (fe.expand) that turns a stream's packet + VM instructions into frames.

Each profile is a self-contained file a TRex user runs unchanged (`start -f <file>`); its packets
come from a plain-scapy build_packet(), importable without TRex. See README.md here.
"""
from __future__ import annotations

import importlib
from pathlib import Path

PROFILES = ("l2_switch", "router", "sketch", "flow_table")
DIR = Path(__file__).resolve().parent


def profile_path(name: str) -> Path:
    """The file of a profile, for STLProfile.load_py / `start -f`."""
    if name not in PROFILES:
        raise ValueError(f"unknown TRex profile {name!r} (have: {', '.join(PROFILES)})")
    return DIR / f"{name}.py"


def profile_module(name: str):
    """The profile as a Python module (build_packet and helpers; streams need trex_stl_lib)."""
    profile_path(name)
    return importlib.import_module(f"traffic.trex.{name}")
