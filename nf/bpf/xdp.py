"""XDP attachment through bpf_link: modes, links (pin / update / detach), and queries.

The mode flag (XDP_FLAGS_DRV_MODE / XDP_FLAGS_SKB_MODE) is passed at link creation: libbpf's
plain XDP attach passes none, which means "native if the driver can, else generic" decided by the
kernel and invisible to the caller. A link lives as long as its last fd or its bpffs pin.
Everything here acts in the calling thread's network namespace (ifindex numbers are per netns).
"""
from __future__ import annotations

import ctypes
import enum
import errno as E
import os
import socket
from dataclasses import dataclass

from nf.bpf import libbpf as L
from nf.bpf.errors import BpfError


class XdpMode(enum.Enum):
    AUTO = "auto"          # native, falling back to generic when the driver has no XDP support
    NATIVE = "native"      # driver mode (XDP_FLAGS_DRV_MODE)
    GENERIC = "generic"    # skb mode (XDP_FLAGS_SKB_MODE)
    HW = "hw"              # offloaded (only reported by query; not attachable here)


class XdpAction(enum.IntEnum):
    ABORTED = 0
    DROP = 1
    PASS = 2
    TX = 3
    REDIRECT = 4


_MODE_FLAGS = {XdpMode.NATIVE: L.XDP_FLAGS_DRV_MODE, XdpMode.GENERIC: L.XDP_FLAGS_SKB_MODE}
_ATTACHED = {L.XDP_ATTACHED_DRV: XdpMode.NATIVE, L.XDP_ATTACHED_SKB: XdpMode.GENERIC,
             L.XDP_ATTACHED_HW: XdpMode.HW}


def ifindex_of(iface: int | str) -> int:
    """ifindex from a name or number (in the calling thread's netns)."""
    if isinstance(iface, int):
        if iface <= 0:
            raise ValueError(f"invalid ifindex {iface}")
        return iface
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        raise BpfError(E.ENODEV, f"no interface named {iface!r} in this network namespace") from None


def ifname_of(ifindex: int) -> str:
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return f"ifindex {ifindex}"


@dataclass(frozen=True)
class XdpQuery:
    """What bpf_xdp_query reports for an interface."""
    ifindex: int
    mode: XdpMode | None        # None: nothing attached; MULTI reports several ids below
    prog_id: int                # the single attached program (0 if none or several)
    drv_prog_id: int
    skb_prog_id: int
    hw_prog_id: int
    multi: bool = False

    @property
    def attached(self) -> bool:
        return bool(self.drv_prog_id or self.skb_prog_id or self.hw_prog_id or self.prog_id)

    def prog_ids(self) -> dict[XdpMode, int]:
        return {m: i for m, i in ((XdpMode.NATIVE, self.drv_prog_id),
                                  (XdpMode.GENERIC, self.skb_prog_id),
                                  (XdpMode.HW, self.hw_prog_id)) if i}


def query(iface: int | str) -> XdpQuery:
    ifindex = ifindex_of(iface)
    opts = L.bpf_xdp_query_opts()
    L.check(L.bpf_xdp_query(ifindex, 0, ctypes.byref(opts)), f"xdp query on {ifname_of(ifindex)}")
    multi = opts.attach_mode == L.XDP_ATTACHED_MULTI
    return XdpQuery(ifindex, _ATTACHED.get(opts.attach_mode), opts.prog_id, opts.drv_prog_id,
                    opts.skb_prog_id, opts.hw_prog_id, multi)


def detach_legacy(iface: int | str, mode: XdpMode = XdpMode.AUTO) -> None:
    """Remove a netlink-attached (non-link) XDP program. Link-held programs refuse (EBUSY):
    detach those through their Link (Link.from_pin(path).detach())."""
    ifindex = ifindex_of(iface)
    flags = _MODE_FLAGS.get(mode, 0)
    ret = L.bpf_xdp_detach(ifindex, flags, None)
    if ret < 0:
        hint = ("the program is held by a bpf_link: detach it with Link.from_pin(<pin>).detach()"
                if -ret == E.EBUSY else None)
        L.check(ret, f"xdp detach on {ifname_of(ifindex)}", hint=hint)


def _attach_hint(err: int, mode: XdpMode, ifname: str) -> str | None:
    if err in (E.EOPNOTSUPP, E.EINVAL) and mode is XdpMode.NATIVE:
        return (f"native XDP unsupported on {ifname}: use generic mode (or lower its MTU: "
                f"native XDP on veth needs MTU <= ~3500 without multi-buffer)")
    if err in (E.EBUSY, E.EEXIST):
        return (f"{ifname} already runs an XDP program (another tool's, or another deployment's): "
                f"`ip -d link show dev {ifname}` shows it; detach it first")
    if err == E.ENODEV:
        return f"{ifname} does not exist in the calling thread's network namespace"
    if err == E.EPERM:
        return "attaching XDP needs root (CAP_NET_ADMIN + CAP_BPF)"
    return None


def attach(prog_fd: int, prog_name: str, iface: int | str, mode: XdpMode = XdpMode.AUTO,
           pin: str | os.PathLike | None = None) -> "Link":
    ifindex = ifindex_of(iface)
    if mode is XdpMode.HW:
        raise BpfError(E.EOPNOTSUPP, "hardware offload attach is not supported")
    tries = [XdpMode.NATIVE, XdpMode.GENERIC] if mode is XdpMode.AUTO else [mode]
    err = 0
    for m in tries:
        opts = L.bpf_link_create_opts(flags=_MODE_FLAGS[m])
        fd = L.bpf_link_create(prog_fd, ifindex, L.BPF_XDP, ctypes.byref(opts))
        if fd >= 0:
            link = Link(fd, ifindex=ifindex, mode=m)
            if pin is not None:
                try:
                    link.pin(pin)
                except BpfError:
                    link.close()      # no half-made deployment: the link dies with its fd
                    raise
            return link
        err = -fd
        if not (mode is XdpMode.AUTO and m is XdpMode.NATIVE and err in (E.EOPNOTSUPP, E.EINVAL)):
            break
    ifname = ifname_of(ifindex)
    raise BpfError(err, f"attach XDP program {prog_name!r} to {ifname} ({m.value} mode)",
                   hint=_attach_hint(err, m, ifname))


class Link(L.Closing):
    """A bpf_link. Closing the last fd detaches it unless it is pinned in bpffs."""

    def __init__(self, fd: int, *, ifindex: int | None = None, mode: XdpMode | None = None,
                 pin_path: str | None = None):
        self._fd = fd
        self.mode = mode
        self.pin_path = pin_path
        self._ifindex = ifindex

    @classmethod
    def from_pin(cls, path: str | os.PathLike) -> "Link":
        fd = L.bpf_obj_get(os.fsencode(path))
        L.check(fd, f"cannot open pinned link {path}")
        link = cls(fd, pin_path=str(path))
        try:
            info = link.info()
        except BpfError:
            link.close()
            raise BpfError(E.EINVAL, f"{path} is pinned but is not a BPF link") from None
        if info.type == L.BPF_LINK_TYPE_XDP:
            link._ifindex = info.xdp_ifindex
            # ifindex 0: the interface went away (or the link was detached); the link is defunct
            # but still detachable/unpinnable, so no query (it would name no interface)
            link.mode = link._mode_from_query() if info.xdp_ifindex else None
        return link

    @property
    def defunct(self) -> bool:
        """True when the link no longer holds an interface (its device was deleted, or another
        process detached it); detach() still releases it cleanly."""
        if self._fd < 0:
            return True
        info = self.info()
        return info.type == L.BPF_LINK_TYPE_XDP and info.xdp_ifindex == 0

    def _mode_from_query(self) -> XdpMode | None:
        try:
            q = query(self._ifindex)
        except (BpfError, ValueError):
            return None
        pid = self.prog_id
        for m, i in q.prog_ids().items():
            if i == pid:
                return m
        return None

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise BpfError(E.EBADF, "link used after close()/detach()")
        return self._fd

    def info(self) -> L.bpf_link_info:
        return L.get_info(L.bpf_link_get_info_by_fd, self.fd, L.bpf_link_info,
                          "bpf_link_get_info_by_fd")

    @property
    def id(self) -> int:
        return self.info().id

    @property
    def prog_id(self) -> int:
        """Id of the attached program (0 once the link is detached/defunct)."""
        return self.info().prog_id

    @property
    def ifindex(self) -> int | None:
        """The interface (0 after detach or when the device went away)."""
        if self._fd >= 0:
            info = self.info()
            if info.type == L.BPF_LINK_TYPE_XDP:
                return info.xdp_ifindex
        return self._ifindex

    def pin(self, path: str | os.PathLike) -> None:
        """Pin in bpffs: the link (and the attachment) then outlives this process."""
        ret = L.bpf_obj_pin(self.fd, os.fsencode(path))
        L.check(ret, f"pin link at {path}",
                hint="the path exists already" if -ret == E.EEXIST else
                "the parent directory must exist inside a bpffs mount" if -ret in (E.ENOENT, E.EPERM)
                else None)
        self.pin_path = str(path)

    def unpin(self) -> None:
        if self.pin_path:
            try:
                os.unlink(self.pin_path)
            except FileNotFoundError:
                pass
            self.pin_path = None

    def update_program(self, prog, expected_old=None) -> None:
        """Atomically replace the attached program (no window without a program).
        ``prog``/``expected_old`` are Program objects or fds."""
        new_fd = prog if isinstance(prog, int) else prog.fd
        opts = None
        if expected_old is not None:
            old_fd = expected_old if isinstance(expected_old, int) else expected_old.fd
            opts = L.bpf_link_update_opts(flags=L.BPF_F_REPLACE, old_prog_fd=old_fd)
        ret = L.bpf_link_update(self.fd, new_fd, ctypes.byref(opts) if opts else None)
        L.check(ret, "link update",
                hint="the link's current program is not expected_old" if -ret == E.EPERM and opts
                else None)

    def detach(self) -> None:
        """Detach now (even if pinned elsewhere), remove our pin, release the fd."""
        if self._fd >= 0:
            ret = L.bpf_link_detach(self._fd)
            if ret < 0 and -ret not in (E.ENOLINK,):   # ENOLINK: already detached
                L.check(ret, "link detach")
        self.unpin()
        self.close()

    def close(self) -> None:
        """Release our fd only (a pinned link stays attached)."""
        if self._fd >= 0:
            L.close_fd(self._fd)
            self._fd = -1


    def __repr__(self):
        if self._fd < 0:
            return "<Link (closed)>"
        return f"<Link fd={self._fd} ifindex={self.ifindex} mode={self.mode} pin={self.pin_path}>"
