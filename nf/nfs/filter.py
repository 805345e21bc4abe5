"""The filter NF: the foundation's base program (xdp_progs/base/: parse, count, drop by rules)
deployed from YAML, standalone or as a member of a chain (configs/filter.yaml, configs/chain.yaml).

    name: edge-filter
    netns: dut
    interfaces: [p1, p2]          # standalone; empty inside a chain (the chain's interfaces)
    drop_dports: [53]             # TCP/UDP destination ports, at most 4
    drop_l4_protos: [1]           # IP protocol numbers, at most 4
    drop_fragments: false

Its rules are rodata (a change is a new program on the same maps); its state is only its
exit-point counters (stats.h, map base_stats), pinned under /sys/fs/bpf/xdp-nf/<name>/ with its
links, so a later process reads and tears it down. Everything else - loading, pinning,
attaching, chaining, swapping - is the engine's (nf/engine.py), driven by KIND below.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

from nf.config.filter import FilterConfig
from nf.nfs.kind import Kind

OBJECT = "base/base"
OBJECT_CHAIN = "chain/base_chain"
PROG = "xdp_base"
STATS = "base_stats"


def base_cfg(cfg: FilterConfig):
    from nf.datapath import BaseCfg
    return BaseCfg.make(drop_fragments=cfg.drop_fragments, drop_l4_protos=cfg.drop_l4_protos,
                        drop_dports=cfg.drop_dports)


class Filter:
    """A deployed filter, read from its pins."""

    def __init__(self, cfg: FilterConfig, pin_dir: Path):
        self.cfg, self.pin_dir = cfg, Path(pin_dir)

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

    def release(self) -> None:
        pass


class FilterKind(Kind):
    name = "filter"
    summary = "packet filter: the base NF (parse, count, drop by protocol / port / fragment)"
    config = FilterConfig
    objects = {("pure", False): OBJECT, ("pure", True): OBJECT_CHAIN}
    programs = {"pure": PROG}
    exit_stats = STATS

    def configure(self, obj, cfg) -> None:
        obj.set_rodata("base_cfg", base_cfg(cfg))

    def controller(self, cfg, obj, pin_dir):
        return Filter(cfg, pin_dir)

    def open(self, cfg, pin_dir):
        return Filter(cfg, pin_dir)

    def stats(self, f) -> dict[str, dict[str, int]]:
        return f.stats()


KIND = FilterKind()
