"""The test copy of a config: every interface it names, its netns and instance names replaced
(chain members too), nothing else changed."""
from pathlib import Path

import pytest

from nf.testing import deployment

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"


@pytest.mark.parametrize("name, ifaces", [
    ("l2_switch.yaml", ["p1", "p2", "p3", "p4"]),
    ("router.yaml", ["rt0", "rt1", "rt2"]),
    ("flow_table.yaml", ["p1", "p2"]),             # p2: a rule's redirect port
    ("sketch_redirect.yaml", ["p1", "p2"]),        # p2: redirect_to
    ("sketch.yaml", []),
    ("chain_full.yaml", ["p1", "p2", "p3"]),
    ("filter.yaml", ["p1"]),
])
def test_interfaces_are_every_one_the_config_names(name, ifaces):
    kind, cfg = deployment.load(CONFIGS / name)
    assert deployment.interfaces(kind, cfg) == ifaces


def test_retarget_changes_netns_and_names_only():
    kind, cfg = deployment.load(CONFIGS / "router.yaml")
    new, name, members = deployment.retarget(kind, cfg, CONFIGS / "router.yaml", "nfl1x2ab-dut", "1x2ab")
    assert (name, new.name, new.netns, members) == ("router-1x2ab", "router-1x2ab", "nfl1x2ab-dut", {})
    assert new.model_dump(exclude={"name", "netns"}) == cfg.model_dump(exclude={"name", "netns"})
    kind, cfg = deployment.load(CONFIGS / "l2_switch.yaml")
    long = cfg.model_copy(update={"name": "x" * 32})
    _, name, _ = deployment.retarget(kind, long, "f", "ns", "123456789x9abcd")
    assert name == "x" * 16 + "-123456789x9abcd" and len(name) == 32


def test_retarget_renames_every_chain_member():
    kind, cfg = deployment.load(CONFIGS / "chain_full.yaml")
    new, name, members = deployment.retarget(kind, cfg, "c", "nfl9x1-dut", "9x1")
    assert name == "edge3-9x1" and new.netns == "nfl9x1-dut"
    assert members == {"edge3-ft-9x1": "edge3-ft", "edge3-sk-9x1": "edge3-sk", "edge3-rt-9x1": "edge3-rt"}
    assert [m.netns for _, m in new.members()] == ["nfl9x1-dut"] * 3
