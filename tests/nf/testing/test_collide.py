"""nf/testing/collide.py: flows aimed at one bucket pair under a known key collide there, and
spread under any other key (the reference model; the datapath: tests/xdp_progs/flow_table)."""
from __future__ import annotations

import ipaddress

import pytest

from nf.models.flow_table import CuckooModel, Hash, Rc, hash_key, key_hash, placement
from nf.testing.collide import colliding_flows


@pytest.mark.parametrize("kind", [Hash.MUL64, Hash.CRC32C])
def test_aimed_flows_collide_under_their_key_and_spread_under_another(kind):
    flows = colliding_flows(hash_key(1), kind, 40)
    assert len(set(flows)) == 40
    nets = {ipaddress.ip_network(f"{f.src}/64", strict=False) for f in flows}
    assert len(nets) == 1 and len({f.sport for f in flows}) == 40
    assert len({key_hash(f.key(), hash_key(1), kind) for f in flows}) == 1
    for seed in (2, 0xdeadbeefcafe):
        pairs = {tuple(sorted(placement(f.key(), hash_key(seed), 255, kind)[:2])) for f in flows}
        assert len(pairs) >= 34, (seed, len(pairs))      # 40 random flows in 256 buckets
    # a table keyed by the aimed-at key holds 32 of them (one bucket pair), any other all 40
    for seed, held in ((1, 32), (2, 40), (3, 40)):
        m = CuckooModel(256, seed=seed, hash=kind)
        rcs = [m.insert(f.key())[0] for f in flows]
        assert rcs.count(Rc.OK) == held and set(rcs) <= {Rc.OK, Rc.FULL}, seed
