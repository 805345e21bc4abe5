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


def _generator_names() -> list[str]:
    from traffic.labgen import GENERATORS
    return list(GENERATORS)


@pytest.fixture(params=_generator_names())
def generator(request) -> str:
    """Each lab traffic generator in turn (traffic/labgen.py), so a test's assertions run
    through every generator the kernel permits. One the kernel refuses is skipped with the
    reason, while another covers the same assertions; none usable fails (under CI=true too)."""
    from traffic import labgen
    from nf.testing.tiers import require
    chosen = request.config.getoption("--lab-generator", None)
    if chosen is not None and chosen != request.param:
        pytest.skip(f"--lab-generator {chosen}")
    p = labgen.probe(request.param)
    if not p.ok:
        others = labgen.available()
        if not others:
            require(False, f"no lab traffic generator usable: {labgen.probes()}")
        pytest.skip(f"generator {p.name!r} unavailable ({p.why}); covered by {', '.join(others)}")
    return p.name


@pytest.fixture
def lab_generator(request) -> str | None:
    """The generator named with --lab-generator (None: the first this kernel permits)."""
    return request.config.getoption("--lab-generator", None)
