"""The project's files that are not Python: from a checkout (configs/, kmod/ beside nf/) or, in an
installed wheel, from its package data nf/_data/ (written by setup.py), through importlib.resources.

    data.locate("configs")   # the example configs     (checkout: configs/, wheel: nf/_data/configs)
    data.locate("kmod")      # the module's source     (checkout: kmod/,    wheel: nf/_data/kmod)
    data.examples()          # {"l2_switch": Path(...l2_switch.yaml), ...}

BPF objects follow the same rule in nf/bpf/build.py (built from xdp_progs/ in a checkout).
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout() -> Path | None:
    """The source tree nf runs from (a clone, an editable install), None for an installed wheel."""
    return ROOT if (ROOT / "xdp_progs").is_dir() else None


def package_data(name: str) -> Path | None:
    """nf/_data/<name> of an installed wheel, None when absent (a checkout has none)."""
    d = files("nf") / "_data" / name
    if not d.is_dir():
        return None
    if not isinstance(d, Path):  # libbpf, make and dkms need real paths
        raise FileNotFoundError(f"nf is installed as an archive ({d}): install it unpacked (pip does)")
    return d


def locate(name: str) -> Path:
    root = checkout()
    if root is not None:
        return root / name
    d = package_data(name)
    if d is None:
        raise FileNotFoundError(f"no {name}/: not a checkout ({ROOT}) and no package data "
                                f"nf/_data/{name}; reinstall xdp-nf from its wheel")
    return d


def examples() -> dict[str, Path]:
    """The example configs by name (file stem): one per NF kind, a chain, the demo lab."""
    return {p.stem: p for p in sorted(locate("configs").glob("*.yaml"))}
