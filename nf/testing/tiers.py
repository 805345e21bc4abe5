"""Tier prerequisites. Outside CI a tier whose prerequisites are missing is skipped; with
CI=true it fails, so a CI machine that silently lost QEMU or root cannot turn green."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(ok: bool, why: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"tier prerequisite missing under CI=true: {why}", pytrace=False)
    pytest.skip(why)
