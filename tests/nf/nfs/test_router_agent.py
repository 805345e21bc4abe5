"""The router's agent hooks (RouterKind.due/tick, nf/nfs/router.py) driven by nf/agent.py: a router
deployed as `nf up` does (nf.testing: engine.up into a lab's dut netns) whose routes go via next
hops that no static neighbour names, and that never spoke to the router, forwards only once the
agent has had the kernel resolve them (XDP learns only what reaches it - ARP and ND aimed at the
router - and the dut kernel does not forward the missed frames)."""
from __future__ import annotations

import os
import time

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="netns labs and BPF need root")

CONFIG = """\
name: rtagent
interfaces:
  - {name: rt0, mac: "02:00:00:00:0a:01", addresses: [10.0.0.1/24, "2001:db8::1/64"]}
  - {name: rt1, mac: "02:00:00:00:0a:02", addresses: [10.0.1.1/24, "2001:db8:1::1/64"]}
routes:
  - {prefix: 10.9.0.0/16, via: [10.0.1.7]}
  - {prefix: "2001:db8:9::/48", via: ["2001:db8:1::7"]}
learn_neighbours: %s
sizes: {v4_chunks: 4, v6_chunks: 64, trie_entries: 64, neighbours: 64}
"""


def _not_ours(frame: bytes) -> bool:
    """The lab's own traffic (the kernels' ARP / ND / MLD, the agent's discard datagrams and
    the ICMP they draw): only the test's UDP flows are looked at."""
    p = Ether(frame)
    return not (UDP in p and p[UDP].dport in (5000, 5001))


HOPS = ("10.0.1.7", "2001:db8:1::7")


def _hops(rows: list[dict]) -> list[dict]:
    """Neighbour rows of the next hops (the hosts' other addresses, link-local ones, are learned
    or mirrored too)."""
    return [r for r in rows if r["address"] in HOPS]


def _forget(lab, kind, rec) -> None:
    """The next hops as ones that never spoke to the router: the lab's hosts resolved the router
    before the test (the router and its kernel learned them from those requests), so both forget
    them."""
    from pyroute2 import IPRoute
    from nf import engine
    from nf.net import netns
    for a in HOPS:
        try:
            engine.verb(kind, rec, "neigh", op="del", address=a)
        except KeyError:
            pass                                       # not learned (learn_neighbours: false)
    with netns.enter(lab.dut), IPRoute() as ipr:
        idx = ipr.link_lookup(ifname="rt1")[0]
        for a in HOPS:
            try:
                ipr.neigh("del", dst=a, ifindex=idx)
            except Exception:  # noqa: BLE001 - no entry for it
                pass
        assert not [m for m in ipr.get_neighbours(ifindex=idx) if m.get_attr("NDA_DST") in HOPS]


def _frames(lab):
    rt0 = lab.port("rt0")
    return [Ether(src=rt0.mac, dst=rt0.dut_mac) / IP(src=rt0.ip4, dst="10.9.3.4", ttl=9)
            / UDP(sport=4000, dport=5000) / b"via-agent-v4",
            Ether(src=rt0.mac, dst=rt0.dut_mac) / IPv6(src=rt0.ip6, dst="2001:db8:9::5", hlim=9)
            / UDP(sport=4001, dport=5001) / b"via-agent-v6"]


def _forwarded(sent, src: str, dst: str) -> bytes:
    """``sent`` as the router forwards it: new MACs, TTL / hop limit one less, checksum redone."""
    p = sent.copy()
    p[Ether].src, p[Ether].dst = src, dst
    if IP in p:
        p[IP].ttl -= 1
        del p[IP].chksum
    else:
        p[IPv6].hlim -= 1
    return bytes(Ether(bytes(p)))


@needs_root
@pytest.mark.parametrize("learn", [True, False], ids=["xdp-learns", "kernel-mirrored"])
def test_next_hops_without_static_neighbours_resolve_through_the_agent(tmp_path, learn):
    from nf import deploy, engine
    from nf.agent import Agent
    from nf.testing import NfLab
    f = tmp_path / "router.yaml"
    f.write_text(CONFIG % ("true" if learn else "false"))
    kind = engine.get("router")
    with NfLab(f, ignore=_not_ours) as lab:
        rt1 = lab.port("rt1")
        assert (rt1.ip4, rt1.ip6) == HOPS   # the hosts are the next hops
        rec = deploy.read(lab.name)
        assert rec.status == "up" and rec.netns == lab.dut
        _forget(lab, kind, rec)
        sent = _frames(lab)
        # before the agent: the datapath misses both next hops, nothing leaves rt1
        lab.send("rt0", sent)
        lab.expect_nothing("rt1", timeout=0.5)
        with engine.opened(kind, rec) as r:
            assert sorted(r.misses()) == [(1, a) for a in HOPS]
        assert _hops(engine.verb(kind, rec, "neigh")) == []
        agent, said = Agent(say=None), []
        agent.say = said.append
        assert [r.name for _, r, _ in agent.deployments()] == [lab.name]
        deadline = time.monotonic() + 10
        rows = []
        while time.monotonic() < deadline:
            wait = agent.tick()
            rows = _hops(engine.verb(kind, rec, "neigh"))
            if len(rows) == 2:
                break
            time.sleep(min(wait, 0.2))
        assert rows == [{"port": "rt1", "address": a, "mac": rt1.mac, "static": False}
                        for a in HOPS], (rows, said)
        assert said[0].startswith(f"{lab.name}: ") and \
            said[0].endswith("resolving 10.0.1.7 (rt1), 2001:db8:1::7 (rt1)"), said
        # without learn_neighbours only the mirror of the kernel's entries can have made them
        assert learn or any("neighbour(s) mirrored from the kernel" in s for s in said), said
        lab.send("rt0", sent)
        lab.expect("rt1", [_forwarded(p, rt1.dut_mac, rt1.mac) for p in sent])
        lab.expect_nothing(["rt0", "rt1"])
        time.sleep(agent.tick())                       # the next poll
        agent.tick()
        assert not any("resolving" in s for s in said[1:]), said
        with engine.opened(kind, rec) as r:
            assert r.misses() == []                    # the polls dropped the resolved ones


@needs_root
def test_a_running_nf_agent_drives_a_router_deployed_after_it(tmp_path):
    """`nf agent` as a service runs it (started before, as for the sketches) picks up a router
    deployed later and resolves its next hops: the frames forward within seconds."""
    import subprocess
    import sys
    from pathlib import Path
    from nf.testing import NfLab
    from nf import deploy, engine
    f = tmp_path / "router.yaml"
    f.write_text(CONFIG % "true")
    env = {**os.environ, "NF_AGENT_LOCK": str(tmp_path / "agent.lock")}   # this test's own agent
    agent = subprocess.Popen([str(Path(sys.executable).parent / "nf"), "agent"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with NfLab(f, ignore=_not_ours) as lab:
            rt1 = lab.port("rt1")
            _forget(lab, engine.get("router"), deploy.read(lab.name))
            sent = _frames(lab)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and len(lab.received("rt1")) < 2:
                lab.flush()
                lab.send("rt0", sent)
                time.sleep(0.3)
            lab.flush()
            lab.send("rt0", sent)
            lab.expect("rt1", [_forwarded(p, rt1.dut_mac, rt1.mac) for p in sent])
            name = lab.name
    finally:
        agent.terminate()
        out, err = agent.communicate(timeout=20)
    assert agent.returncode == 0, err
    said = " ".join(x for x in out.splitlines() if x.startswith(f"{name}: ") and "resolving" in x)
    assert "10.0.1.7 (rt1)" in said and "2001:db8:1::7 (rt1)" in said, out
