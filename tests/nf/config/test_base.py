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


def test_diff_names_changed_paths():
    from nf.config import diff
    a = {"aging_time": 300, "ports": [{"name": "p1", "vlan": 10}], "x": 1, "l": [1, 2]}
    b = {"aging_time": 30, "ports": [{"name": "p1", "vlan": 20}], "y": 2, "l": [1]}
    assert diff(a, b) == [("aging_time", 300, 30), ("ports[0].vlan", 10, 20), ("x", 1, None),
                          ("l[-]", 2, None), ("y", None, 2)]
    # a list whose length changes: the items added and removed, not both lists
    old = {"routes": [{"prefix": f"10.{i}.0.0/16", "via": ["10.0.2.2"]} for i in range(50)]}
    new = {"routes": old["routes"][:10] + old["routes"][11:] + [{"via": ["10.0.3.2"], "prefix": "10.99.0.0/16"}] * 2}
    assert diff(old, new) == [("routes[-]", old["routes"][10], None),
                              ("routes[+]", None, new["routes"][-1]), ("routes[+]", None, new["routes"][-1])]


def test_channel_is_read_from_the_field():
    """The deepest mark on a changed path decides; an unmarked path needs down/up."""
    from typing import Annotated, Optional
    from nf.config import PROGRAM, RUNTIME, Channel, channel_of

    class Hop(Model):
        via: str
        weight: Annotated[int, PROGRAM] = 1

    class Cfg2(Model):
        size: int = 1
        hops: Annotated[list[Hop], RUNTIME] = []
        opt: Annotated[Optional[Hop], PROGRAM] = None
        plain: list[Hop] = []

    assert channel_of(Cfg2, "size") == Channel.redeploy
    assert channel_of(Cfg2, "hops") == channel_of(Cfg2, "hops[3].via") == Channel.runtime
    assert channel_of(Cfg2, "hops[0].weight") == Channel.program
    assert channel_of(Cfg2, "opt.via") == Channel.program
    assert channel_of(Cfg2, "plain[1].via") == Channel.redeploy
    assert channel_of(Cfg2, "plain[1].weight") == Channel.program
    assert channel_of(Cfg2, "nosuch.field") == Channel.redeploy


def test_every_nf_config_shares_the_base():
    """name, netns, attach, variant and the interface view are the same fields in every NF."""
    from nf.config import NFConfig
    from nf.config.filter import FilterConfig
    from nf.config.flow_table import FlowTableConfig
    from nf.config.l2_switch import L2SwitchConfig
    from nf.config.router import RouterConfig
    from nf.config.sketch import SketchConfig
    for cls in (FilterConfig, FlowTableConfig, L2SwitchConfig, RouterConfig, SketchConfig):
        assert issubclass(cls, NFConfig)
        assert {"name", "netns", "attach", "variant"} <= set(cls.model_fields)
    sw = L2SwitchConfig.model_validate({"ports": [{"name": "a", "vlan": 1}, {"name": "b", "vlan": 2}]})
    assert sw.interface_names() == ["a", "b"] and sw.name == "l2sw"
    rt = RouterConfig.model_validate({"interfaces": [{"name": "r0"}]})
    assert rt.interface_names() == ["r0"] and rt.variant == "auto"


def test_first_spellings_of_renamed_keys_are_still_read():
    from nf.config.router import RouterConfig
    from nf.config.sketch import SketchConfig
    assert SketchConfig.model_validate({"attach_mode": "native"}).attach == "native"
    assert "attach_mode" not in SketchConfig.model_validate({}).model_dump()
    itf = [{"name": "r0"}]
    assert RouterConfig.model_validate({"interfaces": itf, "use_module": False}).variant == "pure"
    assert RouterConfig.model_validate({"interfaces": itf, "use_module": True}).variant == "auto"
    with pytest.raises(ValueError):
        RouterConfig.model_validate({"interfaces": itf, "use_module": False, "variant": "pure"})


# ---- issue 17: what a YAML file can hide -------------------------------------------------------
def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    from nf.config.base import ConfigError, Model, load

    class M(Model):
        a: int = 0
        b: list[dict] = []
    p = tmp_path / "c.yaml"
    p.write_text("a: 1\nb:\n  - {x: 1, y: 2}\na: 2\n")
    with pytest.raises(ConfigError) as e:
        load(p, M)
    assert e.value.errors == [("line 4", "not valid YAML: duplicate key 'a' (first on line 1)")]
    p.write_text("b:\n  - {x: 1, x: 2}\n")
    with pytest.raises(ConfigError, match="duplicate key 'x'"):
        load(p, M)


@pytest.mark.parametrize("raw,line,byte", [(b"a: 1\n# caf\xe9\n", 2, "0xe9"),
                                           (b"\xff\xfe\x00a", 1, "0xff")])
def test_bytes_that_are_not_utf8_name_their_line(tmp_path, raw, line, byte):
    from nf.config.base import ConfigError, Model, load

    class M(Model):
        a: int = 0
    p = tmp_path / "c.yaml"
    p.write_bytes(raw)
    with pytest.raises(ConfigError) as e:
        load(p, M)
    (where, msg), = e.value.errors
    assert where == f"line {line}" and byte in msg and "not UTF-8" in msg


def test_non_finite_floats_are_refused_everywhere():
    from nf.config.base import ConfigError, Model, validate

    class M(Model):
        t: float = 1.0
    for v in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ConfigError, match="t: Input should be a finite number"):
            validate({"t": v}, M)


def test_long_tables_read_as_pyyaml_reads_them(tmp_path):
    """The fast reader of long runs of one-line flow mappings gives exactly PyYAML's data
    (quoted strings, decimal ints, plain words, comments); any other form on a line (a YAML 1.1
    bool, an octal, a sexagesimal MAC, a nested list) is left to PyYAML, duplicate keys in a row
    are refused with their line, and line numbers of later errors stay right."""
    import yaml
    from nf.config.base import ConfigError, _Loader, _splice, _tables
    rows = [f"  - {{mac: '02:00:00:00:{i >> 8:02x}:{i & 255:02x}', vlan: {i % 4000 + 1}, "
            f"port: p{i % 3}, note: \"n {i}\", w: a_b-c.d}}  # row {i}" for i in range(600)]
    odd = ["  - {mac: 12:30:00:00:00:01, vlan: 1, port: p1}", "  - {vlan: 010, port: x}",
           "  - {port: yes, vlan: 1}", "  - {port: p1, vlan: [1, 2]}", "  - {port: ~, vlan: 1}"]
    text = "name: t\nstatic_entries:\n" + "\n".join(rows[:300] + odd + rows[300:]) + "\nother:\n  - 1\n"
    fast, runs = _tables(text, "t")
    assert len(runs) == 2 and fast.count("\n") == text.count("\n")
    assert _splice(yaml.load(fast, Loader=_Loader), runs) == yaml.load(text, Loader=yaml.SafeLoader)
    bad = "\n".join(rows[:400] + ["  - {port: p1, port: p2}"] + rows[400:])
    with pytest.raises(ConfigError) as e:
        _tables("x:\n" + bad, "t")
    assert e.value.errors[0][0] == "line 402"
    fast, runs = _tables("x:\n" + "\n".join(rows) + "\ny: [\n", "t")
    with pytest.raises(yaml.YAMLError) as e:
        yaml.load(fast, Loader=_Loader)
    assert e.value.problem_mark.line + 1 == len(rows) + 3


def test_kind_detection_parses_the_file_once_and_sees_edits(tmp_path, monkeypatch):
    """Detecting a file's kind validates it against every kind; the YAML is parsed once for
    all of them (a 1M-row file is seconds of parsing), and an edited file is parsed again."""
    import yaml

    from nf import engine
    p = tmp_path / "sw.yaml"
    rows = "".join(f"  - {{mac: '02:00:00:00:{i >> 8:02x}:{i & 255:02x}', vlan: 1, port: p1}}\n"
                   for i in range(300))
    p.write_text("name: big\nports:\n  - {name: p1, mode: access, vlan: 1}\nstatic_entries:\n" + rows)
    calls = []
    real = yaml.load
    monkeypatch.setattr(yaml, "load", lambda *a, **k: calls.append(1) or real(*a, **k))
    kind, cfg = engine.detect(p)
    assert kind.name == "l2_switch" and len(cfg.static_entries) == 300 and len(calls) == 1
    from nf.config import base
    assert base._memo is None            # nothing parsed is kept after detection
    p.write_text(p.read_text().replace("vlan: 1, port: p1}\n", "vlan: 2, port: p1}\n", 1))
    with pytest.raises(ConfigError) as e:
        engine.detect(p, "l2_switch")
    assert len(calls) == 2 and "static_entries[0].vlan" in str(e.value)
