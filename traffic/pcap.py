"""Write frames to pcap files, read them back, and replay them into an interface at a rate.

    write_pcap("x.pcap", frames, pps=1000)            # timestamps 1 ms apart from t=0 (or given)
    recs = read_pcap("x.pcap")                        # [PcapRecord(ts_ns, data, orig_len)]
    res = replay("x.pcap", "eth0", netns="lab-h1", pps=20_000, count=50_000)
    res.sent, res.elapsed_s, res.pps                  # frames sent, wall time, achieved rate

Format: classic libpcap (not pcapng), link type Ethernet, microsecond or nanosecond timestamps;
the reader accepts both byte orders and both resolutions. The writer is our own (a few structs),
so a round trip is byte-exact and needs no scapy; scapy's rdpcap/wrpcap interoperate with it.

Rate pacing: frame i is due at t0 + i / pps (mbps converts through each frame's size; multiplier
follows the file's own timestamps scaled by 1/multiplier). The schedule is absolute, so sleep
overshoot never accumulates: the loop sleeps until the next due time and then sends every frame
that is due, so the average rate is exact and bursts stay as short as the sleep granularity
(~0.1 ms here) allows. Nothing busy-waits. Python's raw-socket send costs a few microseconds, so
rates up to some 100 kpps are met; above that the result reports the rate achieved.
`nf replay` calls replay().
"""
from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nf.net import netns as _netns
from nf.net.iface import resolve

LINKTYPE_ETHERNET = 1
MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
PCAPNG_MAGIC = 0x0A0D0D0A
_HDR = "IHHiIII"    # magic, major, minor, thiszone, sigfigs, snaplen, network
_REC = "IIII"       # ts_sec, ts_frac, incl_len, orig_len
ETH_P_ALL = 0x0003


class PcapError(ValueError):
    """A file that is not a classic pcap, or a truncated/corrupt one."""


@dataclass(frozen=True)
class PcapRecord:
    ts_ns: int          # timestamp in nanoseconds since the epoch (or since 0)
    data: bytes         # captured bytes
    orig_len: int       # length on the wire (>= len(data) when the capture was cut at snaplen)

    @property
    def ts(self) -> float:
        return self.ts_ns / 1e9


def _as_bytes(f) -> bytes:
    if isinstance(f, PcapRecord):
        return f.data
    return bytes(f)


def write_pcap(path: str | os.PathLike, frames: Iterable, *, timestamps: Sequence[float] | None = None,
               pps: float | None = None, start: float = 0.0, nanosecond: bool = False,
               snaplen: int = 65535, linktype: int = LINKTYPE_ETHERNET) -> int:
    """Write frames (bytes, scapy packets or PcapRecords) to a classic pcap file; returns the count.

    Timestamps: PcapRecords keep theirs; otherwise `timestamps` (seconds, one per frame), or
    start + i / pps, or all `start`. Frames longer than snaplen are cut to it (orig_len kept)."""
    if pps is not None and not pps > 0:
        raise ValueError(f"pps must be positive, not {pps!r}")
    if timestamps is not None and pps is not None:
        raise ValueError("give timestamps or pps, not both")
    if not 0 < snaplen <= 0x3FFFFFFF:
        raise ValueError(f"bad snaplen {snaplen}")
    n = 0
    with open(path, "wb") as fh:
        fh.write(struct.pack("<" + _HDR, MAGIC_NS if nanosecond else MAGIC_US, 2, 4, 0, 0,
                             snaplen, linktype))
        for i, f in enumerate(frames):
            data = _as_bytes(f)
            if isinstance(f, PcapRecord):
                ts_ns = f.ts_ns
                orig = max(f.orig_len, len(data))
            else:
                if timestamps is not None:
                    if i >= len(timestamps):
                        raise ValueError(f"{len(timestamps)} timestamps for more frames")
                    t = timestamps[i]
                elif pps is not None:
                    t = start + i / pps
                else:
                    t = start
                if t < 0:
                    raise ValueError(f"negative timestamp {t} for frame {i}")
                ts_ns = round(t * 1e9)
                orig = len(data)
            sec, rem = divmod(ts_ns, 1_000_000_000)
            sub = rem if nanosecond else rem // 1000
            if sec > 0xFFFFFFFF:
                raise ValueError(f"timestamp of frame {i} does not fit 32-bit seconds")
            incl = data[:snaplen]
            fh.write(struct.pack("<" + _REC, sec, sub, len(incl), orig))
            fh.write(incl)
            n += 1
    return n


def read_pcap(path: str | os.PathLike) -> list[PcapRecord]:
    """Every record of a classic pcap file (either byte order, µs or ns timestamps)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 24:
        raise PcapError(f"{path}: {len(raw)} bytes, too short for a pcap header")
    (m_le,) = struct.unpack_from("<I", raw)
    if m_le == PCAPNG_MAGIC:
        raise PcapError(f"{path} is pcapng; convert it with `editcap -F pcap in out.pcap`")
    for endian in "<>":
        (magic,) = struct.unpack_from(endian + "I", raw)
        if magic in (MAGIC_US, MAGIC_NS):
            break
    else:
        raise PcapError(f"{path}: unknown magic 0x{m_le:08x}, not a pcap file")
    _m, _maj, _min, _tz, _sf, _snap, network = struct.unpack_from(endian + _HDR, raw)
    if network != LINKTYPE_ETHERNET:
        raise PcapError(f"{path}: link type {network}, only Ethernet (1) is supported")
    mult = 1 if magic == MAGIC_NS else 1000
    out: list[PcapRecord] = []
    off = 24
    rec = struct.Struct(endian + _REC)
    while off < len(raw):
        if off + rec.size > len(raw):
            raise PcapError(f"{path}: record {len(out)} header cut at byte {off}")
        sec, sub, incl, orig = rec.unpack_from(raw, off)
        off += rec.size
        if off + incl > len(raw):
            raise PcapError(f"{path}: record {len(out)} data cut ({incl} bytes claimed)")
        out.append(PcapRecord(sec * 1_000_000_000 + sub * mult, raw[off:off + incl], orig))
        off += incl
    return out


# ---- replay ---------------------------------------------------------------------------------
@dataclass
class ReplayResult:
    sent: int
    bytes: int
    elapsed_s: float        # first send to last send
    target_pps: float | None
    max_lag_s: float        # worst lateness of a send behind its schedule

    @property
    def pps(self) -> float:
        """Achieved rate: (sent - 1) intervals over the elapsed time."""
        return (self.sent - 1) / self.elapsed_s if self.sent > 1 and self.elapsed_s > 0 else 0.0

    @property
    def mbps(self) -> float:
        return self.bytes * 8 / self.elapsed_s / 1e6 if self.elapsed_s > 0 else 0.0

    def __str__(self) -> str:
        tgt = f" (target {self.target_pps:.0f})" if self.target_pps else ""
        return (f"{self.sent} frames, {self.bytes} bytes in {self.elapsed_s:.3f} s: "
                f"{self.pps:.0f} pps{tgt}, {self.mbps:.2f} Mbit/s, max lag {self.max_lag_s * 1e3:.2f} ms")


def _load(source) -> tuple[list[bytes], list[int] | None]:
    """Frames and (for pcap sources) their timestamps in ns."""
    if isinstance(source, (str, os.PathLike)):
        recs = read_pcap(source)
        short = [i for i, r in enumerate(recs) if len(r.data) < r.orig_len]
        if short:
            raise PcapError(f"{source}: record {short[0]} was cut at capture "
                            f"({len(recs[short[0]].data)} of {recs[short[0]].orig_len} bytes); "
                            "replaying it would send a different frame")
        return [r.data for r in recs], [r.ts_ns for r in recs]
    items = list(source)
    frames = [_as_bytes(f) for f in items]
    recs = items and all(isinstance(f, PcapRecord) for f in items)
    return frames, [f.ts_ns for f in items] if recs else None


def _schedule(frames: list[bytes], ts: list[int] | None, count: int, pps, mbps, multiplier):
    """Offsets (seconds from start) at which each of `count` sends is due, or None: top speed."""
    n = len(frames)
    if pps is not None:
        return [i / pps for i in range(count)]
    if mbps is not None:
        out, t = [], 0.0
        for i in range(count):
            out.append(t)
            t += len(frames[i % n]) * 8 / (mbps * 1e6)
        return out
    if multiplier is not None:
        if ts is None:
            raise ValueError("multiplier needs a pcap (or PcapRecords) with timestamps")
        span = (ts[-1] - ts[0]) if n > 1 else 0
        # a loop restarts one mean gap after the last frame
        period = span + (span / (n - 1) if n > 1 else 0)
        out = []
        for i in range(count):
            rnd, j = divmod(i, n)
            out.append(((ts[j] - ts[0]) + rnd * period) / 1e9 / multiplier)
        return out
    return None


def replay(source, ifname: str, netns: str | None = None, *, pps: float | None = None,
           mbps: float | None = None, multiplier: float | None = None, count: int | None = None,
           burst_pause: tuple[int, float] = (64, 0.0005)) -> ReplayResult:
    """Send the frames of `source` (a pcap path, or a sequence of bytes / scapy packets /
    PcapRecords) out of `ifname` in `netns` (None: the caller's netns).

    count: frames to send (default: each frame once); the frames are cycled when count is larger.
    Rate, at most one of: pps (frames/s), mbps (Mbit/s of frame bytes, FCS and preamble not
    counted), multiplier (the file's own timing, 2.0 = twice as fast). None of them: top speed,
    with a `burst_pause` (frames, seconds) pause that keeps bursts below veth's 256-slot XDP
    ring, as nf.net.frames.send does.

    Raises on a send error (e.g. EMSGSIZE for a frame above the interface MTU, ENOBUFS when the
    receiving veth drops it) with the frame number, rather than reporting a count that was
    not delivered."""
    given = [x for x in (pps, mbps, multiplier) if x is not None]
    if len(given) > 1:
        raise ValueError("give at most one of pps, mbps, multiplier")
    for name, v in (("pps", pps), ("mbps", mbps), ("multiplier", multiplier)):
        if v is not None and not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"{name} must be a positive number, not {v!r}")
    frames, ts = _load(source)
    if not frames:
        raise ValueError("nothing to replay: no frames")
    for i, f in enumerate(frames):
        if len(f) < 14:
            raise ValueError(f"frame {i} is {len(f)} bytes, shorter than an Ethernet header")
    if count is None:
        count = len(frames)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative int, not {count!r}")
    due = _schedule(frames, ts, count, pps, mbps, multiplier)
    resolve(ifname, netns)  # clear error for an unknown interface
    with _netns.enter(netns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
    n_frames = len(frames)
    sent = nbytes = 0
    max_lag = 0.0
    t_first = t_last = 0.0
    try:
        s.bind((ifname, 0))
        send = s.send
        clock = time.perf_counter
        t0 = clock()
        for i in range(count):
            data = frames[i % n_frames]
            if due is not None:
                target = t0 + due[i]
                now = clock()
                if now < target:
                    time.sleep(target - now)
                else:
                    max_lag = max(max_lag, now - target)
            elif burst_pause and burst_pause[0] and i and i % burst_pause[0] == 0:
                time.sleep(burst_pause[1])
            try:
                k = send(data)
            except OSError as e:
                name = errno.errorcode.get(e.errno, str(e.errno))
                raise OSError(e.errno, f"replay: frame {i} ({len(data)} bytes) on {ifname}: "
                                       f"{name} after {sent} sent") from e
            if k != len(data):
                raise OSError(errno.EIO, f"replay: short send of frame {i}: {k} of {len(data)}")
            t_last = clock()
            if i == 0:
                t_first = t_last
            sent += 1
            nbytes += k
    finally:
        s.close()
    return ReplayResult(sent, nbytes, t_last - t_first, pps, max_lag)


def replay_into_lab(lab, host: str, source, **kw) -> ReplayResult:
    """replay() out of a lab host's interface (its frames arrive on the host's dut port)."""
    ns, ifn = lab.tap(host)
    return replay(source, ifn, ns, **kw)
