"""Send and capture raw Ethernet frames on interfaces inside network namespaces.

AF_PACKET sockets are bound to the netns of the thread that creates them, so each socket is made
inside `netns.enter(...)` and then used from anywhere. Frames go in and come out as bytes (scapy
packets are accepted on input and converted with bytes()), so tests assert on bytes.

Received frames whose 802.1Q tag the kernel moved into metadata (rx VLAN acceleration) get the tag
put back from PACKET_AUXDATA, so a capture shows the frame as it was on the wire.
"""
from __future__ import annotations

import errno
import select
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from nf.net import netns as _netns
from nf.net.iface import resolve

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
_AUX = struct.Struct("=IIIHHHH")  # struct tpacket_auxdata
SO_RCVBUFFORCE = 33


def _open(netns: str | None, ifname: str, rcvbuf: int | None = None) -> socket.socket:
    idx = resolve(ifname, netns).ifindex  # clear error for unknown names
    with _netns.enter(netns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        if rcvbuf:
            try:
                s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except PermissionError:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        s.bind((ifname, ETH_P_ALL))
        assert s.getsockname()[0] == ifname and idx > 0
        return s
    except BaseException:
        s.close()
        raise


def send(netns: str | None, ifname: str, frames: Iterable, pace_every: int = 64,
         pace_s: float = 0.0005) -> int:
    """Transmit each frame (bytes or a scapy packet) on `ifname` in `netns`; returns the count.

    A short pause every `pace_every` frames keeps bursts below veth's 256-slot XDP ring and the
    per-CPU backlog, so a send of N frames delivers N frames.
    """
    s = _open(netns, ifname)
    n = 0
    try:
        for f in frames:
            data = bytes(f)
            if len(data) < 14:
                raise ValueError(f"frame {n} is {len(data)} bytes, shorter than an Ethernet header")
            sent = s.send(data)
            if sent != len(data):
                raise OSError(f"short send on {ifname}: {sent} of {len(data)} bytes")
            n += 1
            if pace_every and n % pace_every == 0:
                time.sleep(pace_s)
    finally:
        s.close()
    return n


def _reinsert_vlan(data: bytes, anc) -> bytes:
    for level, typ, cdata in anc:
        if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= _AUX.size:
            status, _len, _snap, _mac, _net, tci, tpid = _AUX.unpack_from(cdata)
            if status & TP_STATUS_VLAN_VALID or tci:
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = 0x8100
                return data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data


@dataclass
class _Tap:
    netns: str | None
    ifname: str
    sock: socket.socket
    frames: list[bytes] = field(default_factory=list)


class Capture:
    """Capture frames received on several (netns, ifname) interfaces at once.

        with Capture([("lab-h2", "eth0"), ("lab-h3", "eth0")]) as cap:
            send("lab-h1", "eth0", pkts)
            got = cap.wait(count=len(pkts), timeout=2)   # {("lab-h2","eth0"): [bytes, ...], ...}

    Sockets are open from construction, so nothing sent after it is missed. Frames the interface
    itself transmits (PACKET_OUTGOING) are ignored unless outgoing=True.
    """

    def __init__(self, taps: Iterable[tuple[str | None, str]], outgoing: bool = False,
                 rcvbuf: int = 8 << 20):
        self.outgoing = outgoing
        self._taps: list[_Tap] = []
        try:
            for ns, ifname in taps:
                self._taps.append(_Tap(ns, ifname, _open(ns, ifname, rcvbuf)))
        except BaseException:
            self.close()
            raise
        if not self._taps:
            raise ValueError("Capture needs at least one (netns, ifname)")
        for t in self._taps:
            t.sock.setblocking(False)

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for t in self._taps:
            t.sock.close()

    def _drain(self, tap: _Tap) -> int:
        n = 0
        while True:
            try:
                data, anc, _flags, addr = tap.sock.recvmsg(65535, 1024)
            except BlockingIOError:
                return n
            except OSError as e:
                # The bound interface went down (and maybe up again): the socket reports it once
                # and keeps working.
                if e.errno == errno.ENETDOWN:
                    continue
                raise
            if addr[2] == PACKET_OUTGOING and not self.outgoing:
                continue
            tap.frames.append(_reinsert_vlan(data, anc))
            n += 1

    def total(self) -> int:
        return sum(len(t.frames) for t in self._taps)

    def wait(self, count: int | None = None, timeout: float = 1.0,
             quiet: float | None = None) -> dict[tuple[str | None, str], list[bytes]]:
        """Collect frames until `count` frames arrived in total, or `timeout` seconds passed.

        With count=None, wait the full timeout (use it to prove that nothing arrives) unless
        `quiet` is given: stop once no frame came for `quiet` seconds.
        """
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        socks = {t.sock.fileno(): t for t in self._taps}
        while True:
            for t in self._taps:
                if self._drain(t):
                    last = time.monotonic()
            if count is not None and self.total() >= count:
                break
            now = time.monotonic()
            if now >= deadline or (quiet is not None and now - last >= quiet):
                break
            step = deadline - now if quiet is None else min(deadline - now, quiet)
            r, _, _ = select.select(list(socks), [], [], max(step, 0.001))
            for fd in r:
                if self._drain(socks[fd]):
                    last = time.monotonic()
        return self.frames()

    def frames(self) -> dict[tuple[str | None, str], list[bytes]]:
        return {(t.netns, t.ifname): list(t.frames) for t in self._taps}

    def take(self) -> dict[tuple[str | None, str], list[bytes]]:
        """The frames received so far (read now, without waiting), removed from the capture."""
        out = {}
        for t in self._taps:
            self._drain(t)
            out[(t.netns, t.ifname)], t.frames = t.frames, []
        return out


def capture(taps: Iterable[tuple[str | None, str]], count: int | None = None,
            timeout: float = 1.0, **kw) -> dict[tuple[str | None, str], list[bytes]]:
    """One-shot: open, wait, close (only useful for traffic someone else is already sending)."""
    with Capture(taps, **kw) as cap:
        return cap.wait(count=count, timeout=timeout)
