"""The tc clone-redirect generator (traffic/labgen.py's "tc"): plain BPF_PROG_TEST_RUN with
`repeat` runs xdp_progs/traffic/tcgen.bpf.c, a SCHED_CLS program that bpf_clone_redirect()s the
test skb out of a lab interface on every run.

Permitted wherever test_run is (it needs no BPF_F_TEST_XDP_LIVE_FRAMES). Each frame is an skb:
the receiving veth copies it into a page before its XDP program runs, so an NF's rewrites never
reach the template, and the far end's NAPI runs on the sending CPU because test_run enables
bottom halves after every run.
"""
from __future__ import annotations

import errno as E

from traffic.labgen import Generator


class TcGen(Generator):
    NAME = "tc"
    OBJECT = "traffic/tcgen"
    PROGRAM = "tcgen_clone"
    MAX_FRAME = 3520      # what test_run accepts for an skb: one page minus headroom and shinfo

    def _send(self, n: int, frame: bytes, batch_size: int) -> int:
        return self.prog.test_run(frame, repeat=n, data_out_size=len(frame)).duration_ns

    @classmethod
    def probe(cls) -> str | None:
        """One clone out of loopback (ifindex 1 in every netns): an IEEE local-experimental
        ethertype that no protocol handler takes, so the stack drops it unseen."""
        frame = b"\xff" * 6 + b"\x02" + b"\0" * 5 + b"\x88\xb5" + bytes(46)
        with cls(None, "lo", [frame]) as gen:
            gen._send(1, frame, 0)
            err = gen.last_error()
            if gen._sent() != 1 and err != -E.ENETDOWN:    # a down loopback still proves the path
                return f"bpf_clone_redirect failed ({E.errorcode.get(-err, err)})"
        return None
