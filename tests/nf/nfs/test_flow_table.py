"""nf/nfs/flow_table.py: the controller on the host kernel (test_run; no interfaces attached)."""
from __future__ import annotations

import time

import pytest

from nf.config import ConfigError, validate
from nf.config.flow_table import FlowTableConfig
from nf.datapath import XdpAction
from nf.models.flow_table import Action, CuckooModel, Flags, Flow, Rc
from nf.nfs.flow_table import FlowTable, FlowTableError, flow_frame, module_loaded

A = Flow("10.0.0.1", "10.0.0.2", 1000, 53, 17)
B = Flow("10.0.0.1", "10.0.0.3", 1001, 80, 6)
C = Flow("2001:db8::1", "2001:db8::2", 0, 0, 58)


def test_up_installs_static_rules():
    cfg = validate({"size": 256, "variant": "pure", "rules": [
        {"src": A.src, "dst": A.dst, "sport": 1000, "dport": 53, "action": "drop"},
        {"src": B.src, "dst": B.dst, "proto": "tcp", "sport": 1001, "dport": 80,
         "action": "redirect", "port": "lo"},
        {"src": C.src, "dst": C.dst, "proto": "icmpv6"}]}, FlowTableConfig)
    with FlowTable(cfg).up() as ft:
        got = {e.flow: (e.action, e.port, e.flags) for e in ft.dump()}
        assert got == {A: (Action.DROP, 0, Flags.STATIC), B: (Action.REDIRECT, 1, Flags.STATIC),
                       C: (Action.PASS, 0, Flags.STATIC)}
        assert ft.run(flow_frame(A)).retval == XdpAction.DROP
        assert ft.run(flow_frame(B)).retval == XdpAction.REDIRECT
        assert ft.metrics()["entries"] == 3


def test_crud_and_python_lookup_agrees_with_datapath():
    with FlowTable(size=256, variant="pure").load() as ft:
        model = CuckooModel(ft.n_buckets, key=ft.hash_key)
        w = ft.insert(A, Action.DROP)
        assert model.insert(A.key())[1].bucket == w.bucket
        with pytest.raises(FlowTableError, match="EXISTS"):
            ft.insert(A, Action.PASS)
        # an update of a present flow says where it is (the index too)
        w2 = ft.insert(A, Action.PASS, update=True)
        assert (w2.bucket, w2.slot, w2.idx, w2.moves) == (w.bucket, w.slot, w.idx, 0) != (0, 0, 0, 0)
        e = ft.lookup(A)
        dp = ft.lookup_datapath(A)
        assert (e.bucket, e.slot, e.action) == (dp.bucket, dp.slot, Action.PASS) == (w.bucket, w.slot, Action.PASS)
        assert (e.bucket, e.slot) == (model.lookup(A.key()).bucket, model.lookup(A.key()).slot)
        assert ft.place(A)[:2] == model.place(A.key())[:2]
        assert ft.lookup(B) is None and ft.lookup_datapath(B) is None
        assert ft.delete(A) and not ft.delete(A)
        assert ft.lookup(A) is None and ft.dump() == []
        m = ft.metrics()
        assert (m["inserts"], m["deletes"], m["entries"]) == (1, 1, 0)
        with pytest.raises(ValueError, match="redirect needs a port"):
            ft.insert(B, Action.REDIRECT)


def test_expire_idle_learned_flows_only():
    with FlowTable(size=256, variant="pure", idle_timeout=2.0).load() as ft:
        ft.insert(C, Action.PASS)                     # static: never expires
        for f in (A, B):
            ft.run(flow_frame(f))                     # learned
        time.sleep(2.5)                               # a margin for a loaded machine
        ft.run(flow_frame(B))                         # B active again
        gone = ft.expire()
        assert gone == [A]
        assert ft.lookup(A) is None and ft.lookup(B).packets == 2 and ft.lookup(C)
        # far in the future everything learned is idle; the static flow stays
        assert ft.expire(now_ns=time.monotonic_ns() + 10**10) == [B]
        assert [e.flow for e in ft.dump()] == [C]
        assert FlowTable(size=256, idle_timeout=0).expire() == []


def test_reset_empties_everything():
    with FlowTable(size=64, variant="pure").load() as ft:
        for i in range(20):
            ft.run(flow_frame(Flow("10.0.0.1", "10.0.0.2", i, 1, 17)))
        assert ft.metrics()["entries"] == 20
        ft.reset()
        m = ft.metrics()
        assert (m["entries"], m["inserts"], m["lookups"]) == (0, 0, 0)
        assert ft.dump() == [] and ft.stats().total_packets == 0
        w = ft.insert(A)
        assert w.idx == 1  # the allocator starts over too


@pytest.mark.skipif(module_loaded(), reason="the module is loaded here")
def test_enetstl_variant_needs_the_module():
    with pytest.raises(ConfigError, match="enetstl needs the enetstl module"):
        FlowTable(size=64, variant="enetstl").load()
    ft = FlowTable(size=64, variant="auto").load()
    try:
        assert ft.variant.value == "pure" and ft.prog.name == "xdp_ft_pure"
    finally:
        ft.down()


def test_missing_interface_is_a_config_error():
    with pytest.raises(ConfigError, match="interface 'nosuchif0'"):
        FlowTable(size=64, variant="pure", default_action="redirect",
                  default_port="nosuchif0").load()


def test_table_rule_failure_names_the_rule():
    rules = [{"src": f"10.0.0.{i}", "dst": "10.0.1.1", "proto": "icmp"} for i in range(1, 40)]
    cfg = validate({"size": 32, "variant": "pure", "rules": rules[:32]}, FlowTableConfig)
    # past validation (model_copy does not validate): 33 rules for the 32 slots of 2 buckets,
    # so the 33rd must fail, named
    ft = FlowTable(cfg.model_copy(update={"rules": validate({"rules": rules[:33]}, FlowTableConfig).rules}))
    with pytest.raises(FlowTableError, match=r"rules\[32\] 'icmp 10.0.0.33 -> 10.0.1.1 pass': FULL"):
        ft.up()
    assert ft.obj is None


def _flows(n: int, seed: int = 3) -> list[Flow]:
    import random
    rnd, out = random.Random(seed), set()
    while len(out) < n:
        out.add(Flow(f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                     f"192.168.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
                     rnd.randrange(1024, 65536), 443, 6))
    return sorted(out, key=str)


def test_insert_many_places_like_insert():
    """insert_many (xdp_ft_batch: the control requests in one run) and insert() (one test_run
    each) build the same table; every request's code comes back in order."""
    flows = _flows(2000)
    with FlowTable(size=4096, variant="pure", learn=False, seed=5).load() as a, \
            FlowTable(size=4096, variant="pure", learn=False, seed=5).load() as b:
        rc = a.insert_many(flows, Action.DROP)
        assert rc.tolist() == [Rc.OK] * len(flows)
        for f in flows:
            b.insert(f, Action.DROP)
        ea = {(e.flow, e.bucket, e.slot, e.action) for e in a.dump()}
        assert ea == {(e.flow, e.bucket, e.slot, e.action) for e in b.dump()} and len(ea) == 2000
        again = a.insert_many(flows[:5] + _flows(3, seed=4), Action.PASS)
        assert again.tolist() == [Rc.EXISTS] * 5 + [Rc.OK] * 3
        assert a.metrics()["entries"] == 2003 and a.lookup(flows[0]).action == Action.DROP


def test_insert_many_full_table_and_mixed_requests():
    """A batch runs any request: inserts past the key store are refused (NO_INDEX), deletes and
    lookups in the same batch see the inserts before them, FIND is the datapath's lookup."""
    import ctypes

    import numpy as np

    from nf.models.flow_table import FtKey, FtReq, Op
    flows = _flows(40)
    with FlowTable(size=32, variant="pure", learn=False).load() as ft:
        rc = ft.insert_many(flows)
        assert (rc == Rc.OK).sum() <= 32 and set(rc[rc != Rc.OK].tolist()) <= {Rc.FULL, Rc.NO_INDEX}
        held = [f for f, r in zip(flows, rc) if r == Rc.OK]
        reqs = [FtReq(op=Op.DELETE, key=FtKey.from_buffer_copy(held[0].key())),
                FtReq(op=Op.LOOKUP, key=FtKey.from_buffer_copy(held[0].key())),
                FtReq(op=Op.FIND, key=FtKey.from_buffer_copy(held[1].key())),
                FtReq(op=Op.FIND, key=FtKey.from_buffer_copy(held[0].key())),
                FtReq(op=99, key=FtKey.from_buffer_copy(held[1].key()))]
        rows = np.frombuffer(b"".join(bytes(r) for r in reqs), np.uint8).reshape(len(reqs), -1)
        out = [FtReq.from_buffer_copy(r.tobytes()) for r in ft.batch(rows)]
        assert [r.ret for r in out] == [Rc.OK, Rc.NOT_FOUND, Rc.OK, Rc.NOT_FOUND, Rc.BAD_REQ]
        assert ft.lookup(held[0]) is None and ft.metrics()["entries"] == len(held) - 1
        assert ctypes.sizeof(FtReq) == rows.shape[1]
