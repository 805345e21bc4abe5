"""Router test fixtures (helpers live in router_topo.py, next to this file)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from router_topo import make_router  # noqa: E402


@pytest.fixture(scope="module", params=["dir", "trie"])
def router(request):
    if os.geteuid() != 0:
        pytest.skip("loading BPF needs root")
    r = make_router(request.param)
    yield r
    r.close()
