"""nf/config/flow_table.py: the example config, and invalid ones rejected naming the rule."""
from __future__ import annotations

from pathlib import Path

import pytest

from nf.config import ConfigError, load, validate
from nf.config.flow_table import Action, FlowTableConfig

ROOT = Path(__file__).resolve().parents[3]


def test_example_config_loads():
    c = load(ROOT / "configs" / "flow_table.yaml", FlowTableConfig)
    assert c.size == 65536 and c.learn and c.default_action == Action.pass_
    assert [r.action for r in c.rules] == [Action.drop, Action.redirect, Action.pass_]
    assert c.rules[0].proto == 17 and c.rules[2].src == "2001:db8::1"
    assert c.rules[1].text() == "tcp 10.0.0.1:40000 -> 10.0.0.3:80 redirect port p2"


def _err(data) -> str:
    with pytest.raises(ConfigError) as e:
        validate(data, FlowTableConfig, "ft.yaml")
    return str(e.value)


R = {"src": "10.0.0.1", "dst": "10.0.0.2", "proto": "udp", "sport": 1, "dport": 2}


@pytest.mark.parametrize("rule, where, msg", [
    ({**R, "src": "10.0.0.256"}, "rules[1].src", "not an IPv4 or IPv6 address"),
    ({**R, "dst": "2001:db8::1"}, "rules[1]", "rule 'udp 10.0.0.1:1 -> [2001:db8::1]:2 pass': src and dst are of different"),
    ({"src": "2001:db8::1", "dst": "2001:db8::2", "proto": "icmp"}, "rules[1]",
     "rule 'icmp 2001:db8::1 -> 2001:db8::2 pass': ICMP over IPv6 is icmpv6 (protocol 58)"),
    ({"src": "10.0.0.1", "dst": "10.0.0.2", "proto": 58}, "rules[1]",
     "rule 'icmpv6 10.0.0.1 -> 10.0.0.2 pass': icmpv6 (protocol 58) is IPv6's"),
    ({**R, "proto": "icmp"}, "rules[1]", "protocol 1 has no ports"),
    ({**R, "action": "redirect"}, "rules[1]", "rule 'udp 10.0.0.1:1 -> 10.0.0.2:2 redirect': redirect needs a port"),
    ({**R, "port": "p1"}, "rules[1]", "only meaningful with redirect"),
    ({**R, "dport": 70000}, "rules[1].dport", "less than or equal to 65535"),
    ({**R, "action": "reject"}, "rules[1].action", "'pass', 'drop' or 'redirect'"),
    ({**R, "proto": "gre2"}, "rules[1].proto", "unknown protocol"),
    ({**R, "color": "red"}, "rules[1].color", "Extra inputs"),
])
def test_bad_rule_named(rule, where, msg):
    ok = {"src": "10.9.0.1", "dst": "10.9.0.2"}
    text = _err({"rules": [ok, rule]})
    assert where in text and msg in text, text


def test_duplicate_rule_named():
    text = _err({"rules": [R, {"src": "10.0.0.5", "dst": "10.0.0.6"}, dict(R, action="drop")]})
    assert "rules[2] 'udp 10.0.0.1:1 -> 10.0.0.2:2 drop' repeats the flow of rules[0]" in text


@pytest.mark.parametrize("data, msg", [
    ({"size": 0}, "size"),
    ({"max_search": 5000}, "max_search"),
    ({"default_action": "redirect"}, "default_action redirect needs default_port"),
    ({"non_ip_action": "redirect"}, "non_ip_action: pass or drop"),
    ({"interfaces": ["a", "a"]}, "interfaces listed twice"),
    ({"idle_timeout": -1}, "idle_timeout"),
    ({"size": 1, "rules": [R, dict(R, sport=9)]}, "2 rules do not fit a table of size 1"),
])
def test_bad_table_settings(data, msg):
    assert msg in _err(data)
