"""The filter NF: the foundation's base program (xdp_progs/base/: parse, count, drop by rules)
deployed from YAML, standalone or as a member of a chain (nf/chain.py).

    name: edge-filter
    netns: dut
    interfaces: [p1, p2]          # standalone; empty inside a chain (the chain's interfaces)
    drop_dports: [53]             # TCP/UDP destination ports, at most 4
    drop_l4_protos: [1]           # IP protocol numbers, at most 4
    drop_fragments: false

Its state is only its exit-point counters (stats.h, map base_stats), pinned under
/sys/fs/bpf/xdp-nf/<name>/ with its links, so a later process reads and tears it down.
"""
from __future__ import annotations

import ctypes

from nf.config import ConfigError
from nf.config.filter import FilterConfig

OBJECT = "base/base"
OBJECT_CHAIN = "chain/base_chain"
PROG = "xdp_base"
STATS = "base_stats"


def base_cfg(cfg: FilterConfig):
    from nf.datapath import BaseCfg
    return BaseCfg.make(drop_fragments=cfg.drop_fragments, drop_l4_protos=cfg.drop_l4_protos,
                        drop_dports=cfg.drop_dports)


class Filter:
    def __init__(self, cfg: FilterConfig):
        from nf.bpf.pin import instance_dir
        self.cfg = cfg
        self.pin_dir = instance_dir(cfg.name, create=False)
        self.obj = None

    def check(self) -> dict[str, int]:
        from nf.net.iface import InterfaceError, resolve
        from nf.net.netns import exists
        if self.cfg.netns is not None and not exists(self.cfg.netns):
            raise ConfigError(self.cfg.name, [("netns", f"no network namespace {self.cfg.netns!r}")])
        found, errors = {}, []
        for i, n in enumerate(self.cfg.interfaces):
            try:
                found[n] = resolve(n, self.cfg.netns).ifindex
            except InterfaceError as e:
                errors.append((f"interfaces[{i}]", f"unknown interface: {e}"))
        if errors:
            raise ConfigError(self.cfg.name, errors)
        return found

    def load(self, chain=None, position: int = 0):
        """Open + configure + pin + load; as a chain member when ``chain`` is given."""
        from nf.bpf import BpfObject
        obj = chain.member(OBJECT_CHAIN, position) if chain else BpfObject.open_built(OBJECT)
        try:
            obj.set_rodata("base_cfg", base_cfg(self.cfg))
            self.pin_dir.mkdir(parents=True, exist_ok=True)
            obj.pin_maps(self.pin_dir, [STATS])
            obj.load()
        except BaseException:
            obj.close()
            raise
        self.obj = obj
        return obj

    def up(self) -> "Filter":
        from nf.bpf import XdpMode
        from nf.net import netns
        ifx = self.check()
        if not ifx:
            raise ConfigError(self.cfg.name, [("interfaces", "a standalone filter needs interfaces")])
        try:
            self.load()
            (self.pin_dir / "links").mkdir(exist_ok=True)
            mode = XdpMode[self.cfg.attach.upper()]
            with netns.enter(self.cfg.netns):
                for n, i in ifx.items():
                    self.obj.program(PROG).attach_xdp(i, mode, pin=self.pin_dir / "links" / n).close()
        except BaseException:
            self.down()
            raise
        finally:
            if self.obj is not None:
                self.obj.close()
                self.obj = None
        return self

    def down(self) -> None:
        from nf.deploy import cleanup_pins
        if self.obj is not None:
            self.obj.close()
            self.obj = None
        cleanup_pins(self.cfg.name)

    def stats(self) -> dict[str, dict[str, int]]:
        """One row ("all"): frames and bytes per verdict (the base program has no ports)."""
        from nf.bpf import Map
        from nf.datapath import NfStats, sum_stats
        m = Map.from_pin(self.pin_dir / STATS)
        try:
            s = sum_stats(m.typed(ctypes.c_uint32, NfStats).lookup_percpu(ctypes.c_uint32(0)))
        finally:
            m.close()
        row = {f"{a.name.lower()}_packets": v for a, v in s.packets.items()}
        row.update({f"{a.name.lower()}_bytes": v for a, v in s.bytes.items()})
        return {"all": row}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.obj is not None:
            self.obj.close()
            self.obj = None
