import pytest
from pydantic import Field

from nf.config import ConfigError, Model, load, validate


class Port(Model):
    name: str
    vlan: int = Field(ge=1, le=4094)


class Cfg(Model):
    ports: list[Port]


def test_errors_name_the_field_path():
    with pytest.raises(ConfigError) as e:
        validate({"ports": [{"name": "a", "vlan": 1}, {"name": "b", "vlan": 5000}]}, Cfg, "x.yaml")
    assert e.value.errors[0][0] == "ports[1].vlan"
    assert "x.yaml" in str(e.value) and "ports[1].vlan" in str(e.value)


def test_unknown_keys_rejected():
    with pytest.raises(ConfigError) as e:
        validate({"ports": [], "prots": 1}, Cfg)
    assert e.value.errors == [("prots", "Extra inputs are not permitted")]


def test_yaml_syntax_error_has_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ports:\n  - name: a\n   vlan: [\n")
    with pytest.raises(ConfigError) as e:
        load(p, Cfg)
    assert e.value.errors[0][0].startswith("line ")


def test_load_ok(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ports:\n  - {name: eth0, vlan: 10}\n")
    assert load(p, Cfg).ports[0].vlan == 10
