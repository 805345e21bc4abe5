"""The live-frames generator (traffic/labgen.py's "live"): BPF_PROG_TEST_RUN with
BPF_F_TEST_XDP_LIVE_FRAMES runs xdp_progs/traffic/livegen.bpf.c, which restores the frame head
from a template and redirects it out of a lab interface through a DEVMAP.

The cheapest generator where permitted; kernel build 6.18.44-fc-v1300 refuses the flag with
EPERM even to root (plain test_run still works), which probe() detects.
"""
from __future__ import annotations

import errno as E

from nf.bpf import BpfObject
from nf.bpf.errors import BpfError
from nf.net import netns as _netns
from traffic.labgen import XDP_DROP, Generator, RxcountCfg, _u32


class LiveGen(Generator):
    """Templates (see gen.h) restored per frame over `restore_len` bytes (default: min(frame,
    128)); 0 turns restoring off (then an NF's rewrites accumulate round after round, since
    live-frames pages are recycled — only useful to show why restoring matters)."""
    NAME = "live"
    OBJECT = "traffic/livegen"
    PROGRAM = "xdp_livegen"
    MAX_FRAME = 3520      # one page minus headroom and skb_shared_info

    def _loaded(self) -> None:
        # A DEVMAP checks the ifindex in the updating thread's netns: fill it from inside.
        with _netns.enter(self.netns):
            self.obj.map("livegen_tx").update(_u32(0), _u32(self.ifindex))

    def _send(self, n: int, frame: bytes, batch_size: int) -> int:
        return self.prog.test_run_live(frame, repeat=n, ifindex=self.ifindex,
                                       batch_size=batch_size).duration_ns

    @classmethod
    def probe(cls) -> str | None:
        """One live frame through a dropping program on loopback."""
        with BpfObject.open_built("traffic/rxcount") as obj:
            obj.set_rodata("rxcount_cfg", RxcountCfg(XDP_DROP, 0))
            obj.load()
            try:
                obj.program("xdp_rxcount").test_run_live(bytes(60), repeat=1)
            except BpfError as e:
                if e.errno in (E.EPERM, E.EINVAL, E.EOPNOTSUPP, 524):
                    return f"the kernel refuses BPF_F_TEST_XDP_LIVE_FRAMES ({e.errno_name})"
                raise
        return None
