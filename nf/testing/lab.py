"""Lab fixtures (registered in nf/testing/plugin.py).

    @pytest.mark.netns
    def test_x(lab):                      # a 2-host switch lab (LabSpec.switch(2))
        ...
    @pytest.mark.netns
    def test_y(make_lab):                 # any spec; every lab made is destroyed at teardown
        lab = make_lab(LabSpec.router(3, ipv6=True))
"""
from __future__ import annotations

import pytest

from nf.net.lab import Lab, LabSpec


@pytest.fixture
def make_lab():
    made: list[Lab] = []

    def make(spec: LabSpec | dict | int = 2, name: str | None = None) -> Lab:
        lab = Lab(spec, name)
        made.append(lab)
        return lab

    try:
        yield make
    finally:
        for lab in made:
            lab.destroy()


@pytest.fixture
def lab(make_lab) -> Lab:
    return make_lab(LabSpec.switch(2))
