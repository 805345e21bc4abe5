"""Bad input to `nf up` (issue 17), one table: every case gets its documented exit code, one
`nf: error:` line naming the field (or file:line), no traceback, and leaves nothing behind (no
record, no pins, bpffs as it was). Tier 1 with root (the system checks of `up` run, on lo; nothing
is ever loaded). Plus the bad command lines that used to exit 1 with a Python exception name."""
from __future__ import annotations

import os
import socket

import pytest
import yaml
from typer.testing import CliRunner

from nf import cli, deploy
from nf.bpf import pin as _pin
from nf.cli import app

NAME = "bad-t"
SW = {"name": NAME, "ports": [{"name": "lo", "vlan": 10}]}
SW_Y = f"name: {NAME}\nports: [{{name: lo, vlan: 10}}]\n"
RT = {"name": NAME, "interfaces": [{"name": "lo", "addresses": ["10.255.0.1/24"]}],
      "sizes": {"v4_chunks": 16, "v6_chunks": 16, "trie_entries": 64, "neighbours": 16}}


def nf(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _statics(n: int) -> list[dict]:
    return [{"mac": f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", "vlan": 10, "port": "lo"}
            for i in range(n)]


# (case, file name, content: dict (YAML-dumped) | str | bytes, extra files, exit code, needles)
CASES = [
    ("name '.'", "l2_switch.yaml", {**SW, "name": "."}, {}, 3, ["name: String should match"]),
    ("name '..'", "l2_switch.yaml", {**SW, "name": ".."}, {}, 3, ["name:"]),
    ("name with dots", "l2_switch.yaml", {**SW, "name": "hux.."}, {}, 3, ["name:"]),
    ("name with a slash", "l2_switch.yaml", {**SW, "name": "a/b"}, {}, 3, ["name:"]),
    ("name too long", "l2_switch.yaml", {**SW, "name": "x" * 33}, {}, 3, ["name:"]),
    ("aging_time .inf", "l2_switch.yaml", SW_Y + "aging_time: .inf\n", {}, 3,
     ["aging_time: Input should be a finite number"]),
    ("aging_time .nan", "l2_switch.yaml", SW_Y + "aging_time: .nan\n", {}, 3, ["aging_time:"]),
    ("aging_time 1e300", "l2_switch.yaml", SW_Y + "aging_time: 1.0e+300\n", {}, 3,
     ["aging_time: Input should be less than or equal to 42949672"]),
    ("fdb_size too large", "l2_switch.yaml", {**SW, "fdb_size": (1 << 22) + 1}, {}, 3, ["fdb_size:"]),
    ("more static entries than fdb_size", "l2_switch.yaml",
     {**SW, "fdb_size": 16, "static_entries": _statics(17)}, {}, 3,
     ["static_entries:", "17 entries do not fit in fdb_size 16"]),
    ("duplicate top-level key", "l2_switch.yaml", SW_Y + f"name: {NAME}2\n", {}, 3,
     ["line 3:", "duplicate key 'name' (first on line 1)"]),
    ("duplicate key in a port", "l2_switch.yaml",
     f"name: {NAME}\nports:\n  - {{name: lo, vlan: 10, vlan: 20}}\n", {}, 3,
     ["line 3:", "duplicate key 'vlan'"]),
    ("Latin-1 comment", "l2_switch.yaml", SW_Y.encode() + b"# caf\xe9\n", {}, 3,
     ["line 3:", "byte 0xe9 at column 6 is not UTF-8"]),
    ("binary file", "l2_switch.yaml", b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x00", {}, 3,
     ["line 1:", "not UTF-8"]),
    ("NUL bytes", "l2_switch.yaml", SW_Y.encode() + b"\x00\x00", {}, 3, ["line 3:", "NUL"]),
    ("empty file", "l2_switch.yaml", "", {}, 3, ["ports: Field required"]),
    ("a list, not a mapping", "l2_switch.yaml", "- a\n- b\n", {}, 3, ["valid dictionary"]),
    ("sketch epoch_s .inf", "sketch.yaml", f"name: {NAME}\ninterfaces: [lo]\nepoch_s: .inf\n", {}, 3,
     ["epoch_s:"]),
    ("sketch epoch_s 1e300", "sketch.yaml", f"name: {NAME}\ninterfaces: [lo]\nepoch_s: 1.0e+300\n",
     {}, 3, ["epoch_s: Input should be less than or equal to"]),
    ("flow_table idle_timeout .inf", "flow_table.yaml",
     f"name: {NAME}\ninterfaces: [lo]\nidle_timeout: .inf\n", {}, 3, ["idle_timeout:"]),
    ("router trie_entries 4e9", "router.yaml", {**RT, "sizes": {"trie_entries": 4_000_000_000}}, {},
     3, ["sizes.trie_entries: Input should be less than or equal to 16777216"]),
    ("router v4_chunks 2^22", "router.yaml", {**RT, "sizes": {"v4_chunks": 1 << 22}}, {}, 3,
     ["sizes.v4_chunks:"]),
    ("router neighbours 2^31", "router.yaml", {**RT, "sizes": {"neighbours": 1 << 31}}, {}, 3,
     ["sizes.neighbours:"]),
    ("route file with 0xff", "router.yaml", {**RT, "route_file": "routes.txt"},
     {"routes.txt": b"10.1.0.0/16 blackhole\n10.2.\xff.0/16 blackhole\n"}, 3,
     ["routes.txt:2:", "byte 0xff is not UTF-8"]),
    ("route file garbage", "router.yaml", {**RT, "route_file": "routes.txt"},
     {"routes.txt": "10.1.0.0/16 blackhole\n# fine\nhello world\n"}, 3, ["routes.txt:3:"]),
    ("route file with NUL", "router.yaml", {**RT, "route_file": "routes.txt"},
     {"routes.txt": b"10.1.0.0/16 blackhole\n\x00\x00\n"}, 3, ["routes.txt:2:", "NUL"]),
    ("route without target", "router.yaml", {**RT, "route_file": "routes.txt"},
     {"routes.txt": "10.1.0.0/16\n"}, 3, ["routes.txt:1:", "has no target"]),
]


def _bpffs() -> set[str]:
    return {str(p.relative_to(_pin.BPFFS)) for p in _pin.BPFFS.rglob("*")} if _pin.BPFFS.exists() else set()


@pytest.mark.parametrize("case,fname,content,files,code,needles", CASES, ids=[c[0] for c in CASES])
def test_bad_config(tmp_path, case, fname, content, files, code, needles):
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "needs root (the system checks of nf up)")
    for n, c in files.items():
        (tmp_path / n).write_bytes(c if isinstance(c, bytes) else c.encode())
    f = tmp_path / fname
    if isinstance(content, dict):
        content = yaml.safe_dump(content)
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _bpffs()
    for cmd in ("up",) if files else ("validate", "up"):    # validate reads no route file
        r = nf(cmd, f)
        assert r.exit_code == code, (case, cmd, r.output)
        assert r.output.startswith("nf: error: ") and "Traceback" not in r.output, r.output
        for needle in needles:
            assert needle in r.output, (case, cmd, needle, r.output)
    assert deploy.read(NAME) is None and not (_pin.ROOT / NAME).exists()
    assert _bpffs() == before


def test_bad_command_lines_get_their_code_and_a_sentence(tmp_path):
    from nf.testing.tiers import require
    require(os.geteuid() == 0, "needs root")
    r = nf("check", "--netns", "nf-no-such-ns", "--json")
    assert r.exit_code == cli.E_CONFIG and "--netns: no network namespace 'nf-no-such-ns'" in r.output
    with socket.socket() as s:                       # --listen on a busy port: a conflict
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = f"127.0.0.1:{s.getsockname()[1]}"
        r = nf("metrics", "--listen", busy)
    assert r.exit_code == cli.E_CONFLICT and f"--listen {busy}: Address already in use" in r.output
    assert "OSError" not in r.output
    r = nf("metrics", "--listen", "8.8.8.8:9")
    assert r.exit_code == cli.E_CONFIG and "--listen" in r.output


@pytest.mark.netns
def test_foreign_xdp_program_on_a_port_is_a_conflict(make_lab, tmp_path):
    """A port that runs an XDP program nf did not attach: 7, the port named, how to see it."""
    from nf.bpf import BpfObject, XdpMode
    from nf.net.lab import LabSpec
    lab = make_lab(LabSpec.switch(2))
    f = tmp_path / "l2_switch.yaml"
    f.write_text(yaml.safe_dump({"name": NAME, "netns": lab.dut,
                                 "ports": [{"name": "p1", "vlan": 1}, {"name": "p2", "vlan": 1}]}))
    with BpfObject.open_built("base/base") as obj:
        obj.load()
        with lab.enter("dut"):
            link = obj.program("xdp_base").attach_xdp("p2", XdpMode.NATIVE)
        try:
            r = nf("up", f)
        finally:
            link.detach()
    assert r.exit_code == cli.E_CONFLICT, r.output
    assert "p2" in r.output and "already runs an XDP program" in r.output
    assert deploy.read(NAME) is None and not (_pin.ROOT / NAME).exists()


def test_an_unknown_interface_named_on_a_command_line_is_a_config_error():
    """`nf flows add --port nosuch` used to exit 1 with "InterfaceError: ..."."""
    from nf.net.iface import InterfaceError
    f = cli._classify(InterfaceError("no interface 'nosuch' in the current netns"))
    assert (f.code, f.msg) == (cli.E_CONFIG, "no interface 'nosuch' in the current netns")
