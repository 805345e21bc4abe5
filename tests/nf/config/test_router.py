"""nf/config/router.py: the example config loads; invalid input is rejected before anything loads,
each error naming its field path."""
from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import ConfigError
from nf.config.router import RouterConfig, load_router_config, validate_router_config

ROOT = Path(__file__).resolve().parents[3]


def base(**kw) -> dict:
    d = {"interfaces": [{"name": "a", "ifindex": 2, "mac": "02:00:00:00:00:01",
                         "addresses": ["10.0.0.1/24", "2001:db8::1/64"]},
                        {"name": "b", "ifindex": 3, "mac": "02:00:00:00:00:02",
                         "addresses": ["10.0.1.1/24"]}]}
    d.update(kw)
    return d


def errors_of(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as e:
        validate_router_config(data)
    return dict(e.value.errors)


def test_example_config_loads():
    cfg = load_router_config(ROOT / "configs" / "router.yaml")
    assert isinstance(cfg, RouterConfig) and cfg.mode == "dir"
    assert [i.name for i in cfg.interfaces] == ["rt0", "rt1", "rt2"]
    assert cfg.groups[0].via == ["10.0.1.2", "10.0.2.2"]


def test_valid_routes_accepted():
    cfg = validate_router_config(base(routes=[
        {"prefix": "0.0.0.0/0", "via": ["10.0.1.2"]}, {"prefix": "10.9.0.0/16", "dev": "b"},
        {"prefix": "2001:db8:9::/48", "via": ["2001:db8::2"]}, {"prefix": "1.0.0.0/8", "blackhole": True}]))
    assert len(cfg.routes) == 4


@pytest.mark.parametrize("data,path,msg", [
    (base(interfaces=[{"name": "a", "ifindex": 2, "mac": "02:00:00:00:00:01", "addresses": ["10.0.0.1/16"]},
                      {"name": "b", "ifindex": 3, "mac": "02:00:00:00:00:02", "addresses": ["10.0.5.1/24"]}]),
     "interfaces[1].addresses[0]", "overlaps 10.0.0.0/16"),
    (base(routes=[{"prefix": "10.5.0.0/16", "via": ["192.0.2.1"]}]), "routes[0].via[0]",
     "192.0.2.1 is on no connected subnet"),
    (base(routes=[{"prefix": "10.5.0.1/16", "via": ["10.0.1.2"]}]), "routes[0].prefix", "host bits set"),
    (base(routes=[{"prefix": "10.5.0.0/33", "via": ["10.0.1.2"]}]), "routes[0].prefix", "length"),
    (base(routes=[{"prefix": "10.5.0.0/16", "via": ["10.0.1.999"]}]), "routes[0].via", "malformed address"),
    (base(routes=[{"prefix": "10.5.0.0/16", "via": ["2001:db8::2"]}]), "routes[0].via[0]", "not IPv4"),
    (base(routes=[{"prefix": "10.5.0.0/16", "group": "nope"}]), "routes[0].group", "unknown group"),
    (base(routes=[{"prefix": "10.5.0.0/16", "via": ["10.0.1.2"], "blackhole": True}]), "routes[0]", "exactly one"),
    (base(routes=[{"prefix": "10.5.0.0/16", "via": ["10.0.1.2"]}, {"prefix": "10.5.0.0/16", "blackhole": True}]),
     "routes[1].prefix", "duplicate route"),
    (base(routes=[{"prefix": "10.5.0.0/16", "via": ["10.0.0.2"], "dev": "b"}]), "routes[0].via[0]",
     "no connected subnet of b"),
    (base(groups=[{"name": "g", "via": ["10.0.1.2", "172.16.0.1"]}]), "groups[0].via[1]", "no connected subnet"),
    (base(neighbours=[{"address": "172.16.0.9", "mac": "02:00:00:00:00:09"}]), "neighbours[0].address", "no connected"),
    (base(neighbours=[{"address": "10.0.0.9", "mac": "02:00:00:00:00"}]), "neighbours[0].mac", "malformed MAC"),
    (base(interfaces=[{"name": "a", "addresses": ["10.0.0.1"]}]), "interfaces[0].addresses", "prefix length"),
    (base(mode="turbo"), "mode", "Input should be"),
    (base(icmp={"unreachable_routes": "admin"}), "icmp.unreachable_routes", "'unreachable' or 'prohibit'"),
    (base(bogus=1), "bogus", "Extra inputs"),
])
def test_rejections_name_the_field(data, path, msg):
    errs = errors_of(data)
    assert path in errs, errs
    assert msg in errs[path], errs


def test_all_errors_reported_at_once():
    errs = errors_of(base(routes=[{"prefix": "10.5.0.0/16", "via": ["192.0.2.1"]},
                                  {"prefix": "10.6.0.0/16", "group": "x"}]))
    assert {"routes[0].via[0]", "routes[1].group"} <= set(errs)


def test_yaml_route_file_relative_to_config(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "interfaces: [{name: a, ifindex: 2, mac: '02:00:00:00:00:01', addresses: [10.0.0.1/24]}]\n"
        "route_file: routes.txt\n")
    cfg = load_router_config(tmp_path / "r.yaml")
    assert cfg.route_file == str(tmp_path / "routes.txt")
