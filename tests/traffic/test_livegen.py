"""traffic/livegen.py: what only the live-frames generator does (the assertions every generator
shares are in test_labgen.py)."""
import pytest

from nf.net import LabSpec
from traffic import labgen, packets
from traffic.baselines import Fwd
from traffic.labgen import RxCounter
from traffic.livegen import LiveGen


@pytest.mark.netns
def test_without_restore_rewrites_accumulate(make_lab):
    """Why the live generator restores: pages are recycled without re-copying, so the NF's TTL
    decrement persists round after round until the NF drops the frames (ARCHITECTURE §6).
    Where the kernel refuses live frames, the generator refuses to start with the probe's
    reason (and tc, whose frames are fresh copies, needs no restore)."""
    lab = make_lab(LabSpec.switch(2))
    h1, h2 = lab.host("h1"), lab.host("h2")
    frame = packets.frame(smac=h1.mac, dmac=h1.port_mac, src=h1.ip4, dst=h2.ip4, ttl=64, size=60)
    n = 50_000
    with Fwd(lab.dut, h1.port, h2.port, dmac=h2.mac, smac=h2.port_mac) as fwd, \
            RxCounter(h2.netns, h2.ifname) as rx:
        if not labgen.probe("live").ok:
            with pytest.raises(labgen.GeneratorUnavailable, match="live.*unavailable"):
                labgen.open_generator(h1.netns, h1.ifname, [frame], generator="live")
            with LiveGen(h1.netns, h1.ifname, [frame], restore_len=0) as gen, \
                    pytest.raises(OSError, match="refuses BPF_F_TEST_XDP_LIVE_FRAMES"):
                gen.run(10, cpu=0, rx=rx)
            assert rx.count() == 0
            return
        with LiveGen(h1.netns, h1.ifname, [frame], restore_len=0) as gen:
            res = gen.run(n, cpu=0, rx=rx)
            st = fwd.stats()
    assert res.generated == n
    assert res.received < n and st.reasons[8] == n - res.received > 0
