"""traffic/pcap.py: byte-exact pcap round trips (ours and scapy's), clear errors on bad files,
exact replay schedules, and replay into a lab (netns) that delivers exactly `count` frames at
about the requested rate, as measured from kernel receive timestamps at the far end."""
from __future__ import annotations

import socket
import struct
import time

import pytest
from scapy.utils import rdpcap, wrpcap

from nf.net import LabSpec
from nf.net import netns as _netns
from traffic import generators as g
from traffic import pcap

FRAMES = (g.malformed_frames(include_short=False) + g.imix(36, seed=5)
          + list(g.arp_nd_set().values()))


# ---- files --------------------------------------------------------------------------------
@pytest.mark.parametrize("ns", [False, True], ids=["usec", "nsec"])
def test_round_trip_byte_exact(tmp_path, ns):
    p = tmp_path / "a.pcap"
    ts = [1_700_000_000 + i * 0.001234567 for i in range(len(FRAMES))]
    assert pcap.write_pcap(p, FRAMES, timestamps=ts, nanosecond=ns) == len(FRAMES)
    recs = pcap.read_pcap(p)
    assert [r.data for r in recs] == FRAMES
    assert [r.orig_len for r in recs] == [len(f) for f in FRAMES]
    unit = 1 if ns else 1000
    assert [r.ts_ns for r in recs] == [round(t * 1e9) // unit * unit for t in ts]
    # records written back give the identical file
    q = tmp_path / "b.pcap"
    pcap.write_pcap(q, recs, nanosecond=ns)
    assert q.read_bytes() == p.read_bytes()
    # and the file size is exactly header + records
    assert p.stat().st_size == 24 + sum(16 + len(f) for f in FRAMES)


def test_scapy_interoperates(tmp_path):
    ours, theirs = tmp_path / "ours.pcap", tmp_path / "theirs.pcap"
    pcap.write_pcap(ours, FRAMES, pps=1000, start=10.0)
    got = rdpcap(str(ours))
    assert [bytes(p) for p in got] == FRAMES
    assert [float(p.time) for p in got] == pytest.approx([10.0 + i / 1000 for i in range(len(FRAMES))])
    wrpcap(str(theirs), [g.fixed_size(100, 1)[0], FRAMES[5]], linktype=1)
    assert [r.data for r in pcap.read_pcap(theirs)] == [g.fixed_size(100, 1)[0], FRAMES[5]]


def test_big_endian_file(tmp_path):
    p = tmp_path / "be.pcap"
    f1, f2 = FRAMES[0], FRAMES[1]
    raw = struct.pack(">IHHiIII", pcap.MAGIC_US, 2, 4, 0, 0, 65535, 1)
    raw += struct.pack(">IIII", 5, 250_000, len(f1), len(f1)) + f1
    raw += struct.pack(">IIII", 6, 0, len(f2), len(f2)) + f2
    p.write_bytes(raw)
    recs = pcap.read_pcap(p)
    assert [r.data for r in recs] == [f1, f2]
    assert [r.ts_ns for r in recs] == [5_250_000_000, 6_000_000_000]


def test_snaplen_cut_recorded_and_refused_by_replay(tmp_path):
    p = tmp_path / "cut.pcap"
    big = g.fixed_size(1514, 1)[0]
    pcap.write_pcap(p, [big], snaplen=100)
    (r,) = pcap.read_pcap(p)
    assert r.data == big[:100] and r.orig_len == 1514
    with pytest.raises(pcap.PcapError, match="cut at capture"):
        pcap.replay(p, "lo")


def test_bad_files(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"\x0a\x0d\x0d\x0a" + bytes(40))
    with pytest.raises(pcap.PcapError, match="pcapng"):
        pcap.read_pcap(p)
    p.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(pcap.PcapError, match="not a pcap"):
        pcap.read_pcap(p)
    p.write_bytes(b"\xd4\xc3")
    with pytest.raises(pcap.PcapError, match="too short"):
        pcap.read_pcap(p)
    good = tmp_path / "g.pcap"
    pcap.write_pcap(good, FRAMES[:2])
    p.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(pcap.PcapError, match="record 1 data cut"):
        pcap.read_pcap(p)
    p.write_bytes(struct.pack("<IHHiIII", pcap.MAGIC_US, 2, 4, 0, 0, 65535, 101))
    with pytest.raises(pcap.PcapError, match="link type 101"):
        pcap.read_pcap(p)
    with pytest.raises(ValueError, match="pps"):
        pcap.write_pcap(p, FRAMES, pps=0)


# ---- schedules ----------------------------------------------------------------------------
def test_schedules_exact():
    frames = [bytes(100), bytes(200)]
    assert pcap._schedule(frames, None, 4, 1000, None, None) == [0, 0.001, 0.002, 0.003]
    # mbps: each frame's bits at 1 Mbit/s -> 800 us, 1600 us, 800 us
    assert pcap._schedule(frames, None, 4, None, 1.0, None) == pytest.approx([0, 8e-4, 24e-4, 32e-4])
    ts = [0, 10_000_000, 40_000_000]  # 0, 10 ms, 40 ms; a loop restarts 20 ms (mean gap) later
    assert pcap._schedule([b""] * 3, ts, 5, None, None, 2.0) == pytest.approx(
        [0, 0.005, 0.020, 0.030, 0.035])
    assert pcap._schedule(frames, None, 3, None, None, None) is None
    with pytest.raises(ValueError, match="timestamps"):
        pcap._schedule(frames, None, 3, None, None, 1.0)


def test_replay_argument_errors():
    with pytest.raises(ValueError, match="at most one"):
        pcap.replay(FRAMES, "lo", pps=10, mbps=1)
    with pytest.raises(ValueError, match="positive"):
        pcap.replay(FRAMES, "lo", pps=-1)
    with pytest.raises(ValueError, match="no frames"):
        pcap.replay([], "lo")
    with pytest.raises(ValueError, match="shorter than an Ethernet"):
        pcap.replay([b"\x00" * 13], "lo")
    with pytest.raises(ValueError, match="count"):
        pcap.replay(FRAMES, "lo", count=-2)


# ---- replay into a lab --------------------------------------------------------------------
SO_TIMESTAMPNS = 35


class TimestampedRx:
    """AF_PACKET receiver with kernel receive timestamps (SO_TIMESTAMPNS): an independent
    clock for the replay rate."""

    def __init__(self, netns: str, ifname: str):
        with _netns.enter(netns):
            self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE
        self.s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.s.bind((ifname, 3))
        self.s.settimeout(0.5)
        self.frames: list[tuple[float, bytes]] = []

    def collect(self, n: int, timeout: float = 5.0) -> list[tuple[float, bytes]]:
        end = time.monotonic() + timeout
        while len(self.frames) < n and time.monotonic() < end:
            try:
                data, anc, _fl, addr = self.s.recvmsg(65535, 256)
            except TimeoutError:
                continue
            if addr[2] == 4:  # PACKET_OUTGOING
                continue
            ts = None
            for lvl, typ, cd in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", cd[:16])
                    ts = sec + nsec / 1e9
            self.frames.append((ts, data))
        return self.frames

    def rate(self) -> float:
        t = [ts for ts, _ in self.frames]
        return (len(t) - 1) / (t[-1] - t[0])

    def close(self):
        self.s.close()


@pytest.fixture
def rx_lab(make_lab):
    lab = make_lab(LabSpec.switch(1, port_gro=False))
    rx = TimestampedRx(*lab.tap("dut", "p1"))
    try:
        yield lab, rx
    finally:
        rx.close()


@pytest.mark.netns
@pytest.mark.parametrize("pps,count", [(2000, 601), (20000, 4001)])
def test_replay_count_exact_and_rate(rx_lab, tmp_path, pps, count):
    lab, rx = rx_lab
    path = tmp_path / "t.pcap"
    frames = g.imix(97, seed=1)  # prime-sized loop: count is not a multiple of it
    pcap.write_pcap(path, frames)
    res = pcap.replay_into_lab(lab, "h1", path, pps=pps, count=count)
    got = rx.collect(count)
    time.sleep(0.1)
    got = rx.collect(count + 1, timeout=0.2)  # nothing more may come
    print(f"\n{res}; receiver: {rx.rate():.0f} pps")
    assert res.sent == count and len(got) == count
    assert [d for _, d in got] == [frames[i % len(frames)] for i in range(count)]
    assert rx.rate() == pytest.approx(pps, rel=0.25)
    assert res.pps == pytest.approx(pps, rel=0.25)
    if pps <= 5000:  # gaps above the sleep granularity: paced frame by frame, not in bursts
        gaps = sorted(b[0] - a[0] for a, b in zip(got, got[1:]))
        assert gaps[len(gaps) // 2] == pytest.approx(1 / pps, rel=0.3)
    assert res.bytes == sum(len(frames[i % len(frames)]) for i in range(count))


@pytest.mark.netns
def test_replay_pcap_timing_with_multiplier(rx_lab, tmp_path):
    lab, rx = rx_lab
    path = tmp_path / "t.pcap"
    n = 41
    pcap.write_pcap(path, g.fixed_size(200, n), pps=200)  # 5 ms apart in the file
    res = pcap.replay_into_lab(lab, "h1", path, multiplier=2.0)  # 2.5 ms apart on the wire
    got = rx.collect(n)
    assert res.sent == len(got) == n
    assert rx.rate() == pytest.approx(400, rel=0.25)


@pytest.mark.netns
def test_replay_top_speed_and_mbps(rx_lab):
    lab, rx = rx_lab
    frames = g.fixed_size(1000, 10)
    res = pcap.replay_into_lab(lab, "h1", frames, count=2003)
    assert res.sent == 2003 and len(rx.collect(2003)) == 2003
    rx.frames.clear()
    res = pcap.replay_into_lab(lab, "h1", frames, mbps=40, count=1001)  # 5000 pps of 1000 B
    assert len(rx.collect(1001)) == 1001
    assert rx.rate() * 1000 * 8 / 1e6 == pytest.approx(40, rel=0.25)


@pytest.mark.netns
def test_replay_oversize_frame_fails_with_its_index(make_lab):
    lab = make_lab(LabSpec.switch(1))
    frames = [g.fixed_size(100, 1)[0], g.fixed_size(1515, 1)[0]]  # 1515 > MTU 1500 + 14
    with pytest.raises(OSError, match=r"frame 1 \(1515 bytes\).*EMSGSIZE after 1 sent"):
        pcap.replay_into_lab(lab, "h1", frames)
