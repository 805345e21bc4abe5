"""The NFs: one module per NF (nf/nfs/<nf>.py), each with its controller and its ``KIND`` (a
nf.nfs.kind.Kind: how it is configured, loaded, filled, changed and read). A module here that
defines ``KIND`` is an NF kind named after the module; nothing else lists them."""
from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

_NOT_NFS = {"kind"}


@functools.cache
def _names() -> tuple[str, ...]:
    return tuple(sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                        if m.name not in _NOT_NFS and not m.name.startswith("_")))


def names() -> list[str]:
    """NF kinds, by module name (no module is imported)."""
    return list(_names())


def get(name: str):
    """The ``KIND`` of nf/nfs/<name>.py."""
    if name not in names():
        raise KeyError(f"unknown NF kind {name!r} (kinds: {', '.join([*names(), 'chain'])})")
    return importlib.import_module(f"{__name__}.{name}").KIND
