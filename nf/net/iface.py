"""Interfaces: resolve names/ifindexes in a netns, ethtool features and statistics.

Everything here works on the netns given by name (entered on the calling thread for the duration
of the call) or, with netns=None, on the calling thread's current netns.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.ethtool.ioctl import IoctlEthtool, NoSuchDevice, NotSupportedError

from nf.net import netns as _netns


class InterfaceError(LookupError):
    """Unknown interface, or an interface operation that failed."""


@dataclass(frozen=True)
class Interface:
    name: str
    ifindex: int
    mac: str
    mtu: int
    up: bool
    netns: str | None  # None: the netns the caller was in


def _describe(netns: str | None) -> str:
    return "the current netns" if netns is None else f"netns {netns!r}"


def _from_msg(msg, netns: str | None) -> Interface:
    return Interface(
        name=msg.get("IFLA_IFNAME"),
        ifindex=msg["index"],
        mac=(msg.get("IFLA_ADDRESS") or "00:00:00:00:00:00"),
        mtu=msg.get("IFLA_MTU") or 0,
        up=bool(msg["flags"] & 1),
        netns=netns,
    )


def list_interfaces(netns: str | None = None) -> list[Interface]:
    with _netns.enter(netns), IPRoute() as ipr:
        return [_from_msg(m, netns) for m in ipr.get_links()]


def resolve(iface: str | int, netns: str | None = None) -> Interface:
    """Look up an interface by name or ifindex inside `netns`; clear error when it is not there."""
    if isinstance(iface, bool) or not isinstance(iface, (str, int)):
        raise TypeError(f"interface must be a name or an ifindex, not {iface!r}")
    with _netns.enter(netns), IPRoute() as ipr:
        if isinstance(iface, int):
            msgs = [m for m in ipr.get_links() if m["index"] == iface]
        else:
            idx = ipr.link_lookup(ifname=iface)
            msgs = ipr.get_links(idx[0]) if idx else []
        if not msgs:
            known = sorted(m.get("IFLA_IFNAME") for m in ipr.get_links())
            raise InterfaceError(
                f"no interface {iface!r} in {_describe(netns)} (known: {', '.join(known)})")
        return _from_msg(msgs[0], netns)


def ifindex(iface: str | int, netns: str | None = None) -> int:
    return resolve(iface, netns).ifindex


def _ethtool(name: str) -> IoctlEthtool:
    et = IoctlEthtool()
    et.change_ifname(name)
    return et


def get_features(name: str, netns: str | None = None) -> dict[str, bool]:
    """ethtool -k: every feature string ("rx-gro", "tx-vlan-hw-insert", ...) -> active."""
    with _netns.enter(netns):
        et = _ethtool(name)
    try:
        try:
            feats = et.get_features()
        except (NoSuchDevice, OSError) as e:
            raise InterfaceError(f"ethtool on {name!r} in {_describe(netns)}: {e}") from e
        return {n: bool(v) for n, v, *_ in feats}
    finally:
        et.close()


def set_features(name: str, wanted: dict[str, bool], netns: str | None = None) -> dict[str, bool]:
    """ethtool -K: set features and check the kernel applied them; returns the new state.

    Raises InterfaceError for unknown feature names and for features the device refuses to change
    (e.g. a "fixed" one), instead of silently leaving them as they were.
    """
    with _netns.enter(netns):
        et = _ethtool(name)
    try:
        try:
            feats = et.get_features()
        except (NoSuchDevice, OSError) as e:
            raise InterfaceError(f"ethtool on {name!r} in {_describe(netns)}: {e}") from e
        unknown = [k for k in wanted if k not in feats]
        if unknown:
            raise InterfaceError(f"{name}: unknown ethtool feature(s) {unknown}")
        for k, v in wanted.items():
            feats[k] = bool(v)
        try:
            et.set_features(feats)
        except (NotSupportedError, OSError) as e:
            raise InterfaceError(f"{name}: setting features {wanted} failed: {e}") from e
        now = {n: bool(v) for n, v, *_ in et.get_features()}
    finally:
        et.close()
    wrong = {k: now[k] for k, v in wanted.items() if now[k] != bool(v)}
    if wrong:
        raise InterfaceError(f"{name}: the kernel did not apply features {wrong} (fixed?)")
    return now


def ethtool_stats(name: str, netns: str | None = None) -> dict[str, int]:
    """ethtool -S: driver statistics (for veth: rx_queue_0_drops shows veth-rule drops)."""
    with _netns.enter(netns):
        et = _ethtool(name)
    try:
        try:
            return dict(et.get_statistics())
        except (NoSuchDevice, OSError) as e:
            if isinstance(e, OSError) and e.errno not in (errno.ENODEV, errno.EOPNOTSUPP, None):
                raise
            raise InterfaceError(f"ethtool -S on {name!r} in {_describe(netns)}: {e}") from e
    finally:
        et.close()


def set_sysctl(key: str, value: str | int, netns: str | None = None) -> None:
    """Write /proc/sys/<key with dots as slashes> in `netns` (net.* sysctls are per netns and
    resolved against the opening thread's netns)."""
    path = "/proc/sys/" + key.replace(".", "/")
    with _netns.enter(netns), open(path, "w") as f:
        f.write(str(value))


def get_sysctl(key: str, netns: str | None = None) -> str:
    path = "/proc/sys/" + key.replace(".", "/")
    with _netns.enter(netns), open(path) as f:
        return f.read().strip()
