"""Many flows through an NF in one BPF_PROG_TEST_RUN (xdp_progs/traffic/replay.bpf.c).

test_run with ``repeat`` runs one frame n times; replay makes each of those runs a packet of
another flow: before tail-calling the NF it writes the addresses and ports of the next flow (in
the order of a sequence, or of the flows) over the template frame. A million packets of Zipf
traffic then cost one syscall and the NF's own time, not a million syscalls.

    with Replay(sk.program, flows, seq=fs.sequence) as rp:     # traffic.flows flows, one family
        rp.run(len(fs.sequence))                               # every packet once, in order
        res = rp.run(100_000)                                  # res.duration_ns: per run

The flows must share the template's family and protocol (only addresses and ports are
rewritten; checksums are not, XDP parsing ignores them). The cursor is per CPU and carries on
between runs: pin the caller to one CPU (``cpu=``) to replay a sequence in order.
"""
from __future__ import annotations

import array
import ctypes
import ipaddress
import os
import socket
from collections.abc import Sequence

from nf.bpf import BpfObject
from nf.bpf import libbpf as L
from nf.bpf.errors import BpfError

OBJECT = "traffic/replay"
REPLAY_REC_MAX = 48
ETH = 14
# (offset of the source address, bytes of both addresses + both ports) per family
LAYOUT = {4: (ETH + 12, 4 + 4 + 4), 6: (ETH + 8, 16 + 16 + 4)}


class ReplayCfg(ctypes.Structure):
    __c_struct__ = "struct replay_cfg"
    __bpf_object__ = OBJECT
    _fields_ = [("off", ctypes.c_uint32), ("len", ctypes.c_uint32), ("n_recs", ctypes.c_uint32),
                ("n_seq", ctypes.c_uint32)]


class ReplayRec(ctypes.Structure):
    __c_struct__ = "struct replay_rec"
    __bpf_object__ = OBJECT
    _fields_ = [("w", ctypes.c_uint32 * (REPLAY_REC_MAX // 4))]


MIRRORS = (ReplayCfg, ReplayRec)


def _packed(addr: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def record(flow) -> bytes:
    """The bytes replay writes for ``flow`` (src, dst, sport, dport in network order)."""
    return (_packed(flow.src) + _packed(flow.dst) + flow.sport.to_bytes(2, "big")
            + flow.dport.to_bytes(2, "big"))


def _batch(m, keys: bytes, values: bytes, n: int, chunk: int = 1 << 16) -> None:
    """bpf_map_update_batch over raw key/value buffers, ``chunk`` elements per call."""
    ks, vs = len(keys) // n, len(values) // n
    for i in range(0, n, chunk):
        c = min(chunk, n - i)
        kb = ctypes.create_string_buffer(keys[i * ks:(i + c) * ks], c * ks)
        vb = ctypes.create_string_buffer(values[i * vs:(i + c) * vs], c * vs)
        cnt = ctypes.c_uint32(c)
        ret = L.bpf_map_update_batch(m.fd, kb, vb, ctypes.byref(cnt),
                                     ctypes.byref(L.bpf_map_batch_opts()))
        if ret < 0:
            raise BpfError(-ret, f"batch update of {m.name}: {cnt.value} of {c} written")


class Replay:
    def __init__(self, target, flows: Sequence, frame: bytes, seq: Sequence[int] | None = None):
        """``target``: the NF's loaded program, or None for an XDP_PASS program of the replay
        object (what the replay costs alone); ``frame``: the template, a frame of flows[0] (its
        family and protocol are every flow's); ``seq``: flow indices, one per packet."""
        if not flows:
            raise ValueError("no flows to replay")
        fam = ipaddress.ip_address(flows[0].src).version
        off, n = LAYOUT[fam]
        recs = [record(f) for f in flows]
        if any(len(r) != n or f.proto != flows[0].proto for r, f in zip(recs, flows)):
            raise ValueError("replayed flows must share the template's family and protocol")
        if bytes(frame[off:off + n]) != recs[0]:
            raise ValueError("the template frame is not a frame of flows[0]")
        seq = array.array("I", seq) if seq is not None else None
        if seq is not None and seq and max(seq) >= len(flows):
            raise ValueError(f"sequence names flow {max(seq)} of {len(flows)}")
        self.frame, self.n_flows = bytes(frame), len(flows)
        self.n_seq = len(seq) if seq is not None else 0
        obj = BpfObject.open_built(OBJECT)
        try:
            obj.set_rodata("replay_cfg", ReplayCfg(off=off, len=n, n_recs=len(recs),
                                                   n_seq=self.n_seq))
            obj.map("rp_recs").set_max_entries(len(recs))
            obj.map("rp_seq").set_max_entries(max(1, self.n_seq))
            obj.load()
            pad = bytes(REPLAY_REC_MAX - n)
            _batch(obj.map("rp_recs"), array.array("I", range(len(recs))).tobytes(),
                   b"".join(r + pad for r in recs), len(recs))
            if self.n_seq:
                _batch(obj.map("rp_seq"), array.array("I", range(self.n_seq)).tobytes(),
                       seq.tobytes(), self.n_seq)
            if target is None:
                target = obj.program("xdp_replay_pass")
            obj.map("rp_next").update(bytes(4), target.fd.to_bytes(4, "little"))
        except BaseException:
            obj.close()
            raise
        self.obj, self.prog = obj, obj.program("xdp_replay")

    def rewind(self) -> None:
        """Every CPU's cursor back to the first packet."""
        m = self.obj.map("rp_cursor")
        m.update(bytes(4), bytes(8) * m.ncpus)

    def run(self, n: int, cpu: int | None = None):
        """``n`` packets, continuing from this CPU's cursor; on ``cpu`` when given (the caller's
        affinity is restored). The result's retval and duration (ns per packet, kernel-measured)
        are test_run's."""
        if cpu is None:
            return self.prog.test_run(self.frame, repeat=n)
        saved = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        try:
            return self.prog.test_run(self.frame, repeat=n)
        finally:
            os.sched_setaffinity(0, saved)

    def close(self) -> None:
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self) -> "Replay":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
