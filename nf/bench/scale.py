"""Tables at real sizes (issue 18): the cuckoo flow table and the switch FDB at 1M, 4M and 16M
entries, 75 % full, against the kernel's BPF_MAP_TYPE_HASH holding the same keys.

Method (native, host kernel; ARCHITECTURE.md §6):
- lookups: a batch program of each object (xdp_ft_batch, xdp_fth_batch, xdp_l2sw_fdb_batch) runs
  the datapath's own lookup over BATCH random keys in one BPF_PROG_TEST_RUN (bpf_loop over an
  mmapped request array, repeat REPEAT); a run that only reads the requests is subtracted;
  median of ROUNDS. Keys are random and each is looked up once per pass, so the working set is
  the whole table: caches and TLBs are cold, as for a router's flows. Hits are inserted keys,
  misses keys never inserted.
- insert rate from the control plane: the table's batch control path (FlowTable.insert_many,
  L2Switch-less efdb_fill; each request under the writers' protocol) vs the kernel's
  BPF_MAP_UPDATE_BATCH for the hash map, keys/s over the whole fill.
- memory per entry: the kernel's own accounting of every map of the table (fdinfo `memlock`:
  bpf_map_memory_usage), divided by the entries held.
- guest instruction counts (in the measuring guest, module loaded): the same batch programs,
  pure vs eNetSTL lookups, (C(run) - C(read-only run)) / BATCH.

    python -m nf.bench.scale [--sizes 1M,4M] [--only flow_table|l2_switch]   # prints JSON
"""
from __future__ import annotations

import ctypes
import json
import mmap
import statistics
import time

import numpy as np

# 4k to 256k: tables that still live in the caches, where `variant: auto` needs the answer too
# (the switch's policy reads every size)
SIZES = (1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24)
LOAD = 0.75
BATCH = 65536
ROUNDS = 5
REPEAT = 3


def memlock(*maps) -> int:
    """Bytes the kernel accounts to these maps (fdinfo memlock)."""
    total = 0
    for m in maps:
        for line in open(f"/proc/self/fdinfo/{m.fd}"):
            if line.startswith("memlock:"):
                total += int(line.split()[1])
    return total


class Batch:
    """An mmapped request array of a batch program: rows of `rec` bytes, BATCH of them."""

    def __init__(self, prog, m):
        self.prog, self.m = prog, m
        size = -(-m.value_size * m.max_entries // mmap.PAGESIZE) * mmap.PAGESIZE
        self.mm = mmap.mmap(m.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.rows = np.frombuffer(self.mm, np.uint8, count=m.value_size * m.max_entries).reshape(
            m.max_entries, m.value_size)

    def run(self, n: int, repeat: int = 1) -> int:
        r = self.prog.test_run(n.to_bytes(4, "little") + bytes(60), repeat=repeat)
        if r.retval != 2:
            raise RuntimeError(f"{self.prog.name} returned {r.retval}")
        return r.duration_ns

    def close(self) -> None:
        self.rows = None
        self.mm.close()


def time_side_by_side(cases: dict, op_find: int, rounds: int = ROUNDS, repeat: int = REPEAT) -> dict:
    """ns per lookup of each case {name: (Batch, request rows)} (rows <= BATCH): a run of FIND
    requests minus a run of read-only ones, the cases taking turns round by round (load drift
    spreads over all of them), median of rounds."""
    per: dict = {k: [] for k in cases}

    def run(b, rows, op):
        b.rows[:len(rows)] = rows
        b.rows[:len(rows), 0:4] = np.frombuffer(np.uint32(op).tobytes(), np.uint8)
        return b.run(len(rows), repeat)
    for _ in range(rounds):
        for k, (b, rows) in cases.items():
            base = run(b, rows, 0)       # read-only first: the FIND run's answers stay in rows
            per[k].append(max(run(b, rows, op_find) - base, 0) / len(rows))
    return {k: statistics.median(v) for k, v in per.items()}


# ---- flow table --------------------------------------------------------------------------------

def flow_keys(n: int, seed: int) -> np.ndarray:
    """n distinct random IPv4 5-tuple keys (struct ft_key bytes, n x 40)."""
    from nf.models.flow_table import FtKey
    rng = np.random.default_rng(seed)
    dt = np.dtype([("saddr", "<u4", 4), ("daddr", "<u4", 4), ("sport", "<u2"), ("dport", "<u2"),
                   ("proto", "u1"), ("family", "u1"), ("pad", "u1", 2)])
    assert dt.itemsize == ctypes.sizeof(FtKey)
    out = np.zeros(0, dt)
    while len(out) < n:
        m = int((n - len(out)) * 1.01) + 16
        k = np.zeros(m, dt)
        k["saddr"][:, 0] = rng.integers(0, 1 << 32, m, dtype=np.uint64)
        k["daddr"][:, 0] = rng.integers(0, 1 << 32, m, dtype=np.uint64)
        k["sport"] = rng.integers(1024, 1 << 16, m)
        k["dport"] = rng.integers(1, 1 << 16, m)
        k["proto"] = rng.choice(np.array([6, 17], np.uint8), m)
        k["family"] = 4
        out = np.unique(np.concatenate([out, k]).view(f"V{dt.itemsize}")).view(dt)
    out = out[rng.permutation(len(out))[:n]]
    return out.view(np.uint8).reshape(n, dt.itemsize)


def _ft_rows(keys: np.ndarray) -> np.ndarray:
    from nf.models.flow_table import FtReq, Op
    rows = np.zeros((len(keys), ctypes.sizeof(FtReq)), np.uint8)
    rows[:, 0:4] = np.frombuffer(np.uint32(Op.FIND).tobytes(), np.uint8)
    rows[:, FtReq.key.offset:FtReq.key.offset + keys.shape[1]] = keys
    return rows


def flow_table(size: int, seed: int = 1, rounds: int = ROUNDS, repeat: int = REPEAT) -> dict:
    """The pure table and the hash map at `size` slots (entries), LOAD full, both loaded and
    measured side by side."""
    from nf.bpf import BpfObject
    from nf.bpf import libbpf as L
    from nf.models.flow_table import FtValue, Op, Rc
    from nf.nfs.flow_table import FlowTable
    n = int(size * LOAD)
    keys = flow_keys(n + BATCH, seed)
    ins, miss = keys[:n], keys[n:]
    nh = min(BATCH, n)
    hits = ins[np.random.default_rng(seed + 1).choice(n, nh, replace=False)]
    out = {"size": size, "entries": n}
    ft = FlowTable(size=size, variant="pure", learn=False, hash="mul64", seed=seed).load()
    h = bft = bh = None
    try:
        t = time.perf_counter()
        rc = ft.insert_many(ins)
        out["ft_insert_s"] = time.perf_counter() - t
        out["ft_inserted"] = int((rc == Rc.OK).sum())
        out["ft_insert_rate"] = n / out["ft_insert_s"]
        out["ft_bytes"] = memlock(*(ft.obj.map(m) for m in ("ft_buckets", "ft_entries", "ft_free")))
        h = BpfObject.open_built("flow_table/flow_table_hash")
        h.map("fth_flows").set_max_entries(size)
        h.load()
        m = h.map("fth_flows")
        vals = np.zeros((1 << 16, ctypes.sizeof(FtValue)), np.uint8)
        t = time.perf_counter()
        for s in range(0, n, 1 << 16):
            k = np.ascontiguousarray(ins[s:s + (1 << 16)])
            cnt = ctypes.c_uint32(len(k))
            L.check(L.bpf_map_update_batch(m.fd, k.ctypes.data, vals.ctypes.data, ctypes.byref(cnt),
                                           None), "hash map batch update")
        out["hash_insert_s"] = time.perf_counter() - t
        out["hash_insert_rate"] = n / out["hash_insert_s"]
        out["hash_bytes"] = memlock(m)
        bft = Batch(ft.obj.program("xdp_ft_batch"), ft.obj.map("ft_batch"))
        bh = Batch(h.program("xdp_fth_batch"), h.map("fth_batch"))
        for kind, k in (("hit", hits), ("miss", miss)):
            rows = _ft_rows(k)
            got = time_side_by_side({"ft": (bft, rows), "hash": (bh, rows)}, Op.FIND, rounds, repeat)
            for name, b in (("ft", bft), ("hash", bh)):
                out[f"{name}_{kind}_ns"] = got[name]
                found = int((b.rows[:len(k), 4:8].copy().view(np.int32) == Rc.OK).sum())
                if found != (len(k) if kind == "hit" else 0):
                    raise RuntimeError(f"flow table at {size}: {name} found {found} of {len(k)} {kind}s")
    finally:
        for b in (bft, bh):
            if b is not None:
                b.close()
        ft.down()
        if h is not None:
            h.close()
    return out


# ---- switch FDB --------------------------------------------------------------------------------

def fdb_keys(n: int, seed: int) -> np.ndarray:
    """n distinct FDB keys (struct l2sw_fdb_key as the little-endian u64 the datapath uses):
    random unicast MACs in VLANs 1..100."""
    rng = np.random.default_rng(seed)
    out = np.zeros(0, np.uint64)
    while len(out) < n:
        m = int((n - len(out)) * 1.01) + 16
        mac = rng.integers(0, 1 << 48, m, dtype=np.uint64) & ~np.uint64(1)   # not multicast
        vid = rng.integers(1, 101, m).astype(np.uint64)
        out = np.unique(np.concatenate([out, mac | (vid << np.uint64(48))]))
    return out[rng.permutation(len(out))[:n]]


def _fdb_rows(keys: np.ndarray, op: int, ifindex: int = 0, flags: int = 0) -> np.ndarray:
    from nf.nfs.l2_switch import FdbReq
    r = np.zeros(len(keys), np.dtype([("op", "<u4"), ("ret", "<i4"), ("key", "<u8"), ("ifindex", "<u4"),
                                      ("idx", "<u2"), ("flags", "<u2"), ("now_ns", "<u8"),
                                      ("count", "<u8"), ("busy", "<u8")]))
    assert r.itemsize == ctypes.sizeof(FdbReq)
    r["op"], r["key"], r["ifindex"], r["idx"], r["flags"] = op, keys, ifindex, 1, flags
    return r.view(np.uint8).reshape(len(keys), -1)


def switch_object(variant, size: int):
    """A switch object of ``variant`` sized for ``size`` FDB entries, loaded (test_run only)."""
    from nf.bpf import BpfObject
    from nf.config.l2_switch import Variant
    from nf.bench.l2_switch import SEED
    from nf.nfs.l2_switch import OBJECT, OBJECT_ENETSTL, built, key_table, size_object
    obj = BpfObject.open(built(OBJECT_ENETSTL if variant == Variant.enetstl else OBJECT))
    try:
        size_object(obj, variant, size)
        obj.load()
        key_table(obj.map("config"), variant, SEED)
    except BaseException:
        obj.close()
        raise
    return obj


def fdb(size: int, seed: int = 1, rounds: int = ROUNDS, repeat: int = REPEAT) -> dict:
    """The eNetSTL variant's bucketised FDB (on the host: its pure-eBPF compare) and the pure
    variant's BPF hash map, `size` entries, LOAD full of static entries, both loaded and
    measured side by side."""
    from nf.bpf import libbpf as L
    from nf.config.l2_switch import Variant
    from nf.nfs.l2_switch import FDB_STATIC, FdbVal
    n = int(size * LOAD)
    keys = fdb_keys(n + BATCH, seed)
    ins, miss = keys[:n], keys[n:]
    out = {"size": size, "entries": n}
    from nf.nfs.l2_switch import OP_ADD, OP_FIND
    objs, batches = {}, {}
    try:
        for name, variant in (("efdb", Variant.enetstl), ("hash", Variant.pure)):
            obj = objs[name] = switch_object(variant, size)
            b = batches[name] = Batch(obj.program("xdp_l2sw_fdb_batch"), obj.map("fdb_batch"))
            t = time.perf_counter()
            if variant == Variant.enetstl:   # the control path: ctl_add per request
                refused = np.zeros(n, bool)
                for s in range(0, n, BATCH):
                    part = _fdb_rows(ins[s:s + BATCH], OP_ADD, 15, FDB_STATIC)
                    b.rows[:len(part)] = part
                    b.run(len(part))
                    ret = b.rows[:len(part), 4:8].copy().view(np.int32).ravel()
                    if (ret[ret != 0] != -28).any():
                        raise RuntimeError(f"FDB at {size}: adds failed {set(ret.tolist())}")
                    refused[s:s + len(part)] = ret != 0
                # a key whose bucket's 16 ways are taken is refused (-ENOSPC) before the table is
                # full: counted; the hits come from the keys it took
                out["efdb_refused"] = int(refused.sum())
                out["efdb_entries"] = n - out["efdb_refused"]
                mem = memlock(obj.map("efdb"))
            else:                            # the kernel's batch update of the hash map
                m = obj.map("fdb")
                vals = np.zeros((1 << 16, ctypes.sizeof(FdbVal)), np.uint8)
                vals[:] = np.frombuffer(bytes(FdbVal(ifindex=15, idx=1, flags=FDB_STATIC)), np.uint8)
                for s in range(0, n, 1 << 16):
                    k = np.ascontiguousarray(ins[s:s + (1 << 16)])
                    cnt = ctypes.c_uint32(len(k))
                    L.check(L.bpf_map_update_batch(m.fd, k.ctypes.data, vals.ctypes.data,
                                                   ctypes.byref(cnt), None), "FDB batch update")
                mem = memlock(m)
            out[f"{name}_insert_rate"] = n / (time.perf_counter() - t)
            out[f"{name}_bytes"] = mem
        kept = ins[~refused]
        hits = kept[np.random.default_rng(seed + 1).choice(len(kept), min(BATCH, len(kept)), replace=False)]
        for kind, k in (("hit", hits), ("miss", miss)):
            rows = _fdb_rows(k, OP_FIND)
            got = time_side_by_side({n_: (b, rows) for n_, b in batches.items()}, OP_FIND, rounds, repeat)
            for name, b in batches.items():
                out[f"{name}_{kind}_ns"] = got[name]
                found = int((b.rows[:len(k), 4:8].copy().view(np.int32) >= 0).sum())   # ret: the way
                if found != (len(k) if kind == "hit" else 0):
                    raise RuntimeError(f"FDB {name} at {size}: {found} of {len(k)} {kind}s found")
    finally:
        for b in batches.values():
            b.close()
        for obj in objs.values():
            obj.close()
    return out


# ---- guest instruction counts --------------------------------------------------------------------

GUEST_SIZES = (1 << 20, 1 << 22)   # 16M does not fit the measuring guest's 2 GiB (~1.7 GB a table)
GUEST_K = 512                      # lookups per counted batch run
GUEST_N = 8                        # batch runs per count (N and 2N)


def _per_lookup(c, prog, b: Batch, rows: np.ndarray, op_find: int) -> float:
    """Guest instructions per lookup: a counted batch run of FIND requests minus one of
    read-only requests, over the batch."""
    k = len(rows)
    frame = k.to_bytes(4, "little") + bytes(60)
    out = {}
    for op in (op_find, 0):
        b.rows[:k] = rows
        b.rows[:k, 0:4] = np.frombuffer(np.uint32(op).tobytes(), np.uint8)
        out[op] = c._count(prog, frame, GUEST_N, 0).raw_per_packet
    return (out[op_find] - out[0]) / k


def guest_counts(c, sizes=GUEST_SIZES) -> dict:
    """In a measuring guest, module loaded (c: nf.bench.guest.Counter): instructions per lookup of
    the flow table (pure xdp_ft_batch vs eNetSTL xdp_ft_batch_kf, one table) and of the switch
    FDB (the eNetSTL table: the datapath's enetstl_bt_find, and its BPF probe, on one table; vs
    the pure variant's hash map), hits and misses, at each size, 75 % full:
    {"<nf>/<size>/<variant>/<hit|miss>": insns}."""
    from nf.bpf import libbpf as L
    from nf.config.l2_switch import Variant
    from nf.models.flow_table import Op
    from nf.nfs.flow_table import FlowTable
    from nf.nfs.l2_switch import FDB_STATIC, OP_FIND, OP_FIND_BPF, FdbVal
    out = {}
    rng = np.random.default_rng(7)
    for size in sizes:
        n = int(size * LOAD)
        keys = flow_keys(n + GUEST_K, 1)
        ft = FlowTable(size=size, variant="pure", learn=False, hash="mul64", seed=1).load()
        try:
            ft.insert_many(keys[:n])
            b = Batch(ft.obj.program("xdp_ft_batch"), ft.obj.map("ft_batch"))
            try:
                with c.snapshot():
                    for kind, k in (("hit", keys[rng.choice(n, GUEST_K, replace=False)]), ("miss", keys[n:])):
                        for name, prog in (("pure", "xdp_ft_batch"), ("enetstl", "xdp_ft_batch_kf")):
                            out[f"flow_table/{size}/{name}/{kind}"] = _per_lookup(
                                c, ft.obj.program(prog), b, _ft_rows(k), Op.FIND)
            finally:
                b.close()
        finally:
            ft.down()
        fk = fdb_keys(n + GUEST_K, 1)
        for variant, probes in ((Variant.enetstl, (("enetstl", OP_FIND), ("enetstl bpf probe", OP_FIND_BPF))),
                                (Variant.pure, (("pure", OP_FIND),))):
            obj = switch_object(variant, size)
            try:
                b = Batch(obj.program("xdp_l2sw_fdb_batch"), obj.map("fdb_batch"))
                try:
                    if variant == Variant.enetstl:
                        for s in range(0, n, BATCH):
                            part = _fdb_rows(fk[s:min(s + BATCH, n)], 1, 15, FDB_STATIC)
                            b.rows[:len(part)] = part
                            b.run(len(part))
                    else:
                        m = obj.map("fdb")
                        vals = np.zeros((1 << 16, ctypes.sizeof(FdbVal)), np.uint8)
                        vals[:] = np.frombuffer(bytes(FdbVal(ifindex=15, idx=1, flags=FDB_STATIC)), np.uint8)
                        for s in range(0, n, 1 << 16):
                            k = np.ascontiguousarray(fk[s:min(s + (1 << 16), n)])
                            cnt = ctypes.c_uint32(len(k))
                            L.check(L.bpf_map_update_batch(m.fd, k.ctypes.data, vals.ctypes.data,
                                                           ctypes.byref(cnt), None), "FDB batch update")
                    with c.snapshot():
                        for kind, k in (("hit", fk[rng.choice(n, GUEST_K, replace=False)]), ("miss", fk[n:])):
                            for name, op in probes:
                                out[f"l2_switch/{size}/{name}/{kind}"] = _per_lookup(
                                    c, obj.program("xdp_l2sw_fdb_batch"), b, _fdb_rows(k, op), op)
                finally:
                    b.close()
            finally:
                obj.close()
    return out


def main(argv=None) -> None:
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1M,4M,16M")
    ap.add_argument("--only", default="flow_table", choices=("flow_table", "l2_switch"))
    a = ap.parse_args(argv)
    sizes = [int(x[:-1]) << 20 if x.endswith("M") else int(x) for x in a.sizes.split(",")]
    for s in sizes:
        print(json.dumps(flow_table(s) if a.only == "flow_table" else fdb(s)), flush=True)


if __name__ == "__main__":
    main()
