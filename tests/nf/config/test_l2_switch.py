"""nf/config/l2_switch.py: valid configs load; invalid ones are rejected naming the field."""
from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import ConfigError, load, validate
from nf.config.l2_switch import L2SwitchConfig, PortMode

ROOT = Path(__file__).resolve().parents[3]


def errors_of(data) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as ei:
        validate(data, L2SwitchConfig)
    return ei.value.errors


def test_example_config_loads():
    cfg = load(ROOT / "configs" / "l2_switch.yaml", L2SwitchConfig)
    assert [p.name for p in cfg.ports] == ["p1", "p2", "p3", "p4"]
    trunk = cfg.port("p4")
    assert trunk.mode == PortMode.trunk and trunk.pvid == 30
    assert trunk.tagged_vlans() == {10, 20} and trunk.member_vlans() == {10, 20, 30}
    assert cfg.port("p1").pvid == 10 and cfg.port("p1").tagged_vlans() == set()
    assert cfg.static_entries[0].mac == "02:00:00:00:00:aa"


def test_defaults():
    cfg = validate({"ports": [{"name": "a", "vlan": 1}]}, L2SwitchConfig)
    assert cfg.aging_time == 300 and cfg.fdb_size == 65536 and cfg.ports[0].learning


def test_trunk_native_vlan_listed_too_is_untagged_only():
    cfg = validate({"ports": [{"name": "t", "mode": "trunk", "vlans": [5, 6], "native_vlan": 5}]},
                   L2SwitchConfig)
    assert cfg.ports[0].tagged_vlans() == {6} and cfg.ports[0].pvid == 5


@pytest.mark.parametrize("data,field,text", [
    ({"ports": [{"name": "a", "vlan": 1}, {"name": "a", "vlan": 2}]}, "ports", "duplicate port 'a'"),
    ({"ports": [{"name": "a", "mode": "trunk"}]}, "ports[0].vlans", "at least one VLAN"),
    ({"ports": [{"name": "a", "mode": "trunk", "vlans": []}]}, "ports[0].vlans", "at least one VLAN"),
    ({"ports": [{"name": "a", "vlan": 4095}]}, "ports[0].vlan", "outside 1-4094"),
    ({"ports": [{"name": "a", "vlan": 0}]}, "ports[0].vlan", "outside 1-4094"),
    ({"ports": [{"name": "a", "mode": "trunk", "vlans": [1, 5000]}]}, "ports[0].vlans[1]", "outside 1-4094"),
    ({"ports": [{"name": "a", "mode": "trunk", "vlans": [3, 3]}]}, "ports[0].vlans", "listed twice"),
    ({"ports": [{"name": "a", "mode": "trunk", "vlans": [3], "native_vlan": 0}]},
     "ports[0].native_vlan", "outside 1-4094"),
    ({"ports": [{"name": "a"}]}, "ports[0].vlan", "needs its VLAN"),
    ({"ports": [{"name": "a", "vlan": 3, "vlans": [4]}]}, "ports[0].vlans", "not 'vlans'"),
    ({"ports": [{"name": "a", "vlan": 3, "native_vlan": 4}]}, "ports[0].native_vlan", "only a trunk"),
    ({"ports": [{"name": "a", "mode": "trunk", "vlan": 3, "vlans": [4]}]}, "ports[0].vlan", "not 'vlan'"),
    ({"ports": [{"name": "a", "mode": "hybrid", "vlan": 3}]}, "ports[0].mode", "'access' or 'trunk'"),
    ({"ports": []}, "ports", "at least 1"),
    ({"ports": [{"name": f"p{i}", "vlan": 1} for i in range(65)]}, "ports", "at most 64"),
    ({"ports": [{"name": "a", "vlan": 1}], "aging_time": -1}, "aging_time", "greater than or equal"),
    ({"ports": [{"name": "a", "vlan": 1}], "colour": "red"}, "colour", "Extra inputs"),
    ({"ports": [{"name": "a", "vlan": 1, "speed": 1}]}, "ports[0].speed", "Extra inputs"),
    ({"ports": [{"name": "a", "vlan": 1}], "static_entries": [{"mac": "01:00:5e:00:00:01", "vlan": 1,
                                                                "port": "a"}]},
     "static_entries[0].mac", "multicast"),
    ({"ports": [{"name": "a", "vlan": 1}], "static_entries": [{"mac": "zz", "vlan": 1, "port": "a"}]},
     "static_entries[0].mac", "not a MAC"),
    ({"ports": [{"name": "a", "vlan": 1}], "static_entries": [{"mac": "02:00:00:00:00:01", "vlan": 1,
                                                                "port": "b"}]},
     "static_entries", "static_entries[0].port: 'b' is not a configured port"),
    ({"ports": [{"name": "a", "vlan": 1}], "static_entries": [{"mac": "02:00:00:00:00:01", "vlan": 2,
                                                                "port": "a"}]},
     "static_entries", "static_entries[0].vlan: port 'a' does not carry VLAN 2"),
])
def test_invalid_configs_name_the_field(data, field, text):
    errs = errors_of(data)
    assert any(loc == field and text in msg for loc, msg in errs), errs


def test_yaml_error_names_the_file_and_field(tmp_path):
    p = tmp_path / "sw.yaml"
    p.write_text("ports:\n  - {name: a, mode: trunk, vlans: [10, 4095]}\n")
    with pytest.raises(ConfigError) as ei:
        load(p, L2SwitchConfig)
    assert str(p) in str(ei.value) and "ports[0].vlans[1]: Value error, VLAN 4095 outside 1-4094" in str(ei.value)
