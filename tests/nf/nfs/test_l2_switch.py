"""nf/nfs/l2_switch.py: the controller on a 4-host veth lab (tier 2), plus its root-less parts.

Frames use the local-experimental EtherType 0x88b5 so no host stack answers them; each frame
carries a marker so captures are matched byte for byte.
"""
from __future__ import annotations

import itertools
import os
import struct
import time

import pytest

from nf.config import ConfigError, validate
from nf.config.l2_switch import L2SwitchConfig
from nf.net.lab import LabSpec
from nf.nfs.l2_switch import L2Switch, Vlan, plan_ports, vlan_table

ETYPE = b"\x88\xb5"
BCAST = "ff:ff:ff:ff:ff:ff"
_seq = itertools.count()


def mb(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def frame(src: str, dst: str, marker: str, vid: int | None = None) -> bytes:
    tag = struct.pack("!HH", 0x8100, vid) if vid is not None else b""
    return mb(dst) + mb(src) + tag + ETYPE + marker.encode().ljust(46, b".")


def tagged(f: bytes, vid: int) -> bytes:
    return f[:12] + struct.pack("!HH", 0x8100, vid) + f[12:]


def cfg_for(lab, ports, **kw) -> L2SwitchConfig:
    name = f"t{os.getpid()}-{next(_seq)}"
    return validate({"name": name, "netns": lab.dut, "ports": ports, **kw}, L2SwitchConfig)


ACCESS4 = [{"name": f"p{i}", "vlan": 10} for i in range(1, 5)]
MIXED = [{"name": "p1", "vlan": 10}, {"name": "p2", "vlan": 10}, {"name": "p3", "vlan": 20},
         {"name": "p4", "mode": "trunk", "vlans": [10, 20]}]


@pytest.fixture
def lab4(make_lab):
    return make_lab(LabSpec.switch(4))


@pytest.fixture(params=["pure", "enetstl"])
def variant(request):
    """Both FDB variants; on the host the eNetSTL one runs without the module (pure-eBPF CRC32-C
    and compare, no timing wheel), in the guest with it."""
    return request.param


@pytest.fixture
def switch(lab4, variant):
    made = []

    def make(ports, **kw) -> L2Switch:
        sw = L2Switch(cfg_for(lab4, ports, variant=variant, **kw)).up()
        assert sw.variant.value == variant
        made.append(sw)
        return sw

    yield make
    for sw in made:
        sw.down()


def exchange(lab, sender: str, frames: list[bytes], listeners=("h1", "h2", "h3", "h4"),
             expect: int | None = None, timeout: float = 1.0) -> dict[str, list[bytes]]:
    """Send frames from one host; what each other host received (by host name)."""
    names = [h for h in listeners if h != sender]
    with lab.capture(names) as cap:
        lab.send(sender, frames)
        got = cap.wait(count=expect, timeout=timeout if expect is not None else 0.4)
    by_tap = {lab.tap(h): h for h in names}
    return {by_tap[t]: v for t, v in got.items()}


def mac(lab, h: str) -> str:
    return lab.host(h).mac


# ---- root-less ---------------------------------------------------------------------------------
def test_vlan_table_from_config():
    cfg = validate({"ports": MIXED + [{"name": "p5", "mode": "trunk", "vlans": [20, 30], "native_vlan": 30}]},
                   L2SwitchConfig)
    plans = plan_ports(cfg, {f"p{i}": 100 + i for i in range(1, 6)})
    t = vlan_table(plans)
    assert sorted(t) == [10, 20, 30]
    assert (t[10].members, t[10].untagged) == (0b01011, 0b00011)
    assert (t[20].members, t[20].untagged) == (0b11100, 0b00100)
    assert (t[30].members, t[30].untagged) == (0b10000, 0b10000)
    assert plans[4].pvid == 30 and plans[4].tagged == {20}
    assert isinstance(t[10], Vlan)


# ---- tier 2 --------------------------------------------------------------------------------------
@pytest.mark.netns
def test_unknown_interface_is_rejected_before_loading(lab4):
    cfg = cfg_for(lab4, ACCESS4[:3] + [{"name": "nosuch0", "vlan": 10}])
    sw = L2Switch(cfg)
    with pytest.raises(ConfigError) as ei:
        sw.up()
    assert ei.value.errors[0][0] == "ports[3].name" and "nosuch0" in ei.value.errors[0][1]
    assert sw.obj is None and not sw.pin_dir.exists()


@pytest.mark.netns
@pytest.mark.parametrize("attach", ["native", "generic"])
def test_flood_then_unicast_only_to_its_port(lab4, switch, attach):
    sw = switch(ACCESS4, attach=attach)
    h1, h2 = mac(lab4, "h1"), mac(lab4, "h2")
    b = frame(h1, BCAST, "bcast")
    got = exchange(lab4, "h1", [b], expect=3)
    assert got == {"h2": [b], "h3": [b], "h4": [b]}              # every port but the ingress
    u = frame(h2, "02:00:00:00:99:99", "unknown")                # unknown unicast floods too
    assert exchange(lab4, "h2", [u], expect=3) == {"h1": [u], "h3": [u], "h4": [u]}
    # both learned: unicast reaches only its port
    x = frame(h1, h2, "h1->h2")
    assert exchange(lab4, "h1", [x]) == {"h2": [x], "h3": [], "h4": []}
    y = frame(h2, h1, "h2->h1")
    assert exchange(lab4, "h2", [y]) == {"h1": [y], "h3": [], "h4": []}
    fdb = {(e.mac, e.vlan): e.port for e in sw.fdb()}
    assert fdb == {(h1, 10): "p1", (h2, 10): "p2"}


@pytest.mark.netns
def test_access_vlans_isolated_and_trunk_carries_both_tagged(lab4, switch):
    switch(MIXED)
    h1, h3, h4 = mac(lab4, "h1"), mac(lab4, "h3"), mac(lab4, "h4")
    b10 = frame(h1, BCAST, "v10")
    assert exchange(lab4, "h1", [b10]) == {"h2": [b10], "h3": [], "h4": [tagged(b10, 10)]}
    b20 = frame(h3, BCAST, "v20")
    assert exchange(lab4, "h3", [b20]) == {"h1": [], "h2": [], "h4": [tagged(b20, 20)]}
    # from the trunk: tagged in, untagged out of the access ports of that VLAN only
    t10 = frame(h4, BCAST, "t10", vid=10)
    untag = t10[:12] + t10[16:]
    assert exchange(lab4, "h4", [t10]) == {"h1": [untag], "h2": [untag], "h3": []}
    t20 = frame(h4, h3, "t20", vid=20)                            # h3 learned on VLAN 20 above
    assert exchange(lab4, "h4", [t20]) == {"h1": [], "h2": [], "h3": [t20[:12] + t20[16:]]}
    # wrong VLAN: untagged on the trunk (no native VLAN) and VLAN 30 are dropped and counted
    bad = [frame(h4, BCAST, "untagged"), frame(h4, BCAST, "v30", vid=30)]
    assert exchange(lab4, "h4", bad) == {"h1": [], "h2": [], "h3": []}
    # isolation holds for unicast: h1's MAC is not known on VLAN 20
    assert exchange(lab4, "h3", [frame(h3, h1, "x")]) == {"h1": [], "h2": [], "h4": [tagged(frame(h3, h1, "x"), 20)]}


@pytest.mark.netns
def test_static_entry_survives_aging_and_dynamic_one_ages_out(lab4, switch, aging=1.0):
    static = "02:00:00:00:77:77"
    sw = switch(ACCESS4, aging_time=aging, static_entries=[{"mac": static, "vlan": 10, "port": "p2"}])
    h1, h3 = mac(lab4, "h1"), mac(lab4, "h3")
    exchange(lab4, "h3", [frame(h3, BCAST, "learn h3")], expect=3)
    u = frame(h1, h3, "to h3")
    assert exchange(lab4, "h1", [u]) == {"h2": [], "h3": [u], "h4": []}
    time.sleep(1.6 * aging)
    # the learned entry is no longer used: flooded; the static one still forwards
    h1_to_h3 = frame(h1, h3, "aged")
    assert exchange(lab4, "h1", [h1_to_h3], expect=3) == {"h2": [h1_to_h3], "h3": [h1_to_h3], "h4": [h1_to_h3]}
    s = frame(h1, static, "to static")
    assert exchange(lab4, "h1", [s]) == {"h2": [s], "h3": [], "h4": []}
    time.sleep(1.2 * aging)
    removed = sw.expire()     # the controller's sweep; with the module the wheel may have been first
    wheel = sw.maps.wheel_stats()["expired"] if hasattr(sw.maps, "wheel_stats") else 0
    assert removed + wheel >= 1
    left = {(e.mac, e.static) for e in sw.fdb()}
    assert (static, True) in left and not any(m == h3 for m, _ in left)
    # aging changed at runtime without reload: a fresh entry now lives for 60 s
    sw.set_aging(60)
    exchange(lab4, "h3", [frame(h3, BCAST, "relearn")], expect=3)
    time.sleep(1.2)
    v = frame(h1, h3, "fresh")
    assert exchange(lab4, "h1", [v]) == {"h2": [], "h3": [v], "h4": []}


@pytest.mark.netns
def test_mac_move_redirects(lab4, switch):
    sw = switch(ACCESS4)
    roamer, h2 = "02:00:00:00:55:55", mac(lab4, "h2")
    exchange(lab4, "h1", [frame(roamer, BCAST, "at p1")], expect=3)
    to_roamer = frame(h2, roamer, "where")
    assert exchange(lab4, "h2", [to_roamer]) == {"h1": [to_roamer], "h3": [], "h4": []}
    exchange(lab4, "h3", [frame(roamer, BCAST, "at p3")], expect=3)   # the MAC moves to p3
    assert exchange(lab4, "h2", [to_roamer]) == {"h1": [], "h3": [to_roamer], "h4": []}
    st = sw.stats()
    assert st["p3"]["move"] == 1 and st["p1"]["learn"] == 1
    assert {(e.mac, e.port) for e in sw.fdb()} >= {(roamer, "p3")}


@pytest.mark.netns
def test_counters_equal_what_was_sent(lab4, switch):
    sw = switch(MIXED)
    h1, h2 = mac(lab4, "h1"), mac(lab4, "h2")
    exchange(lab4, "h2", [frame(h2, BCAST, "learn")], expect=2)
    n_uni, n_flood, n_bad = 23, 7, 5
    uni = [frame(h1, h2, f"u{i}") for i in range(n_uni)]
    fl = [frame(h1, BCAST, f"b{i}") for i in range(n_flood)]
    bad = [frame(h1, BCAST, f"t{i}", vid=20) for i in range(n_bad)]   # a VLAN p1 does not carry
    got = exchange(lab4, "h1", uni + fl + bad, expect=n_uni + 2 * n_flood, timeout=3)
    assert len(got["h2"]) == n_uni + n_flood and len(got["h4"]) == n_flood and got["h3"] == []
    st = sw.stats()
    total = n_uni + n_flood + n_bad
    assert st["p1"]["rx_packets"] == total
    assert st["p1"]["rx_bytes"] == sum(map(len, uni + fl + bad))
    assert (st["p1"]["unicast"], st["p1"]["flood"], st["p1"]["drop"], st["p1"]["drop_vlan"]) == \
        (n_uni, n_flood, n_bad, n_bad)
    assert st["p1"]["learn"] == 1
    assert st["p2"]["tx_packets"] == n_uni + n_flood + 0
    assert st["p4"]["tx_packets"] == n_flood + 1                 # + h2's learning broadcast
    assert st["p4"]["tx_bytes"] == sum(len(f) + 4 for f in fl) + len(frame(h2, BCAST, "learn")) + 4
    assert st["p3"]["tx_packets"] == 0 and st["p3"]["rx_packets"] == 0


def _prog_ids(sw) -> set[int]:
    from nf.bpf import Link
    from nf.net.netns import enter
    ids = set()
    with enter(sw.cfg.netns):
        for p in (sw.pin_dir / "links").iterdir():
            with Link.from_pin(p) as link:
                ids.add(link.prog_id)
    return ids


@pytest.mark.netns
def test_a_reload_keeps_the_key_and_what_was_learned(lab4, switch):
    """A new program on the pinned maps (`nf apply --reload`, a rebuilt object, a program field:
    engine.swap_program) reads the same key: MACs learned before it are found after it by
    unicast (no relearning in between), the table still says how it was keyed."""
    from nf import engine
    from nf.nfs.l2_switch import KIND
    sw = switch(ACCESS4)
    hs = {h: mac(lab4, h) for h in ("h1", "h2", "h3", "h4")}
    for h in ("h1", "h3", "h4"):
        exchange(lab4, h, [frame(hs[h], BCAST, f"learn {h}")], expect=3)
    key = sw.maps.keying()
    assert key == {"keyed": True, "by": "drawn" if sw.variant.value == "enetstl" else "kernel"}
    old = _prog_ids(sw)
    assert engine.swap_program(KIND, sw.cfg, sw.pin_dir) == 4
    assert _prog_ids(sw).isdisjoint(old) and sw.maps.keying() == key
    flood0 = sw.stats()["p2"]["flood"]
    for h in ("h1", "h3", "h4"):         # h2 speaks only now: its destinations were learned before
        x = frame(hs["h2"], hs[h], f"to {h} after the reload")
        assert exchange(lab4, "h2", [x]) == {h: [x], **{o: [] for o in ("h1", "h3", "h4") if o != h}}
    st = sw.stats()["p2"]
    assert (st["unicast"], st["flood"] - flood0) == (3, 0)


@pytest.mark.netns
def test_a_config_seed_other_than_the_tables_is_refused(lab4):
    """A program for a pinned eNetSTL table, from a config whose seed is not the table's: refused
    before it is attached anywhere; the table, its key and the running program stay."""
    from nf import engine
    from nf.nfs.l2_switch import KIND
    sw = L2Switch(cfg_for(lab4, ACCESS4, variant="enetstl", seed=1234)).up()
    try:
        h1 = mac(lab4, "h1")
        exchange(lab4, "h1", [frame(h1, BCAST, "learn")], expect=3)
        old = _prog_ids(sw)
        for other in (1235, None):
            cfg = sw.cfg.model_copy(update={"seed": other})
            if other is None:          # no seed in the config: the table's own is kept
                engine.swap_program(KIND, cfg, sw.pin_dir)
                old = _prog_ids(sw)
                continue
            with pytest.raises(RuntimeError, match="another seed .* needs down/up"):
                engine.swap_program(KIND, cfg, sw.pin_dir)
            assert _prog_ids(sw) == old
        assert sw.maps.keying() == {"keyed": True, "by": "config", "seed": 1234}
        assert [e.mac for e in sw.fdb()] == [h1]
    finally:
        sw.down()


def test_a_seed_change_needs_down_up():
    from nf.config import Channel, channel_of
    assert channel_of(L2SwitchConfig, "seed") == Channel.redeploy
    assert L2SwitchConfig.model_fields["seed"].default is None


@pytest.mark.netns
def test_down_detaches_and_unpins(lab4, variant):
    from nf.bpf import xdp_query
    from nf.net.netns import enter

    sw = L2Switch(cfg_for(lab4, ACCESS4, variant=variant)).up()
    try:
        check_down(sw, lab4, variant)
    finally:
        sw.down()   # idempotent; leaves no pins behind even when a check failed


def check_down(sw, lab4, variant):
    from nf.bpf import xdp_query
    from nf.net.netns import enter

    pins = sw.pin_dir
    assert (pins / ("efdb" if variant == "enetstl" else "fdb")).exists()
    assert len(list((pins / "links").iterdir())) == 4
    # a second process's view through the pins
    other = L2Switch.attach(sw.cfg)
    other.fdb_add("02:00:00:00:12:34", 10, "p3")
    assert [(e.mac, e.port, e.static) for e in sw.fdb()] == [("02:00:00:00:12:34", "p3", True)]
    sw.down()
    assert not pins.exists()
    with enter(lab4.dut):
        assert not any(xdp_query(f"p{i}").attached for i in range(1, 5))


# ---- tier 3: the same scenarios in the guest, eNetSTL variant with the module -----------------
@pytest.mark.vm
def test_scenarios_with_enetstl_in_guest(enetstl, make_lab):
    """The tier-2 scenarios again, in the guest with the module loaded (eNetSTL variant: module
    CRC32-C and SIMD find, timing wheel running), plus in-kernel aging: a learned MAC leaves the
    table after the aging time with no expire() call."""
    scenarios = [
        lambda lab, sw: test_flood_then_unicast_only_to_its_port(lab, sw, "native"),
        test_access_vlans_isolated_and_trunk_carries_both_tagged,
        test_mac_move_redirects,
        test_counters_equal_what_was_sent,
        # TCG runs frames and Python slowly: a 1 s aging time would expire entries mid-step
        lambda lab, sw: test_static_entry_survives_aging_and_dynamic_one_ages_out(lab, sw, aging=5.0),
        test_a_reload_keeps_the_key_and_what_was_learned,
    ]
    for scenario in scenarios:
        lab = make_lab(LabSpec.switch(4))
        made = []

        def make(ports, **kw) -> L2Switch:
            sw = L2Switch(cfg_for(lab, ports, variant="enetstl", **kw)).up()
            assert sw.variant.value == "enetstl" and sw.maps.wheel_stats()["handle"] != 0
            made.append(sw)
            return sw

        try:
            scenario(lab, make)
        finally:
            for sw in made:
                sw.down()
            lab.destroy()
    lab = make_lab(LabSpec.switch(4))
    sw = L2Switch(cfg_for(lab, ACCESS4, variant="enetstl", aging_time=4,
                                fdb_size=1024)).up()  # TCG is slow: a small table lists fast
    try:
        h1 = mac(lab, "h1")
        exchange(lab, "h1", [frame(h1, BCAST, "learn")], expect=3, timeout=3)
        assert [e.mac for e in sw.fdb()] == [h1]
        deadline = time.monotonic() + 20
        while sw.fdb() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sw.fdb() == [] and sw.maps.wheel_stats()["expired"] == 1   # the wheel did it
    finally:
        sw.down()
