"""Config of the L2 learning switch (configs/l2_switch.yaml).

Everything checkable without the system is checked here, so an invalid file is rejected with a
field path before anything loads; whether each port's interface exists is checked by the
controller (``L2Switch.check``) against the namespace, with the same ConfigError and field path.
"""
from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Optional

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from nf.config.base import MAX_SECONDS, RUNTIME, AttachMode, Model, NFConfig, Variant, instance_name

MAX_PORTS = 64  # l2_switch.h L2SW_MAX_PORTS: a port is a bit in a u64 VLAN member mask
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _vid(v: int) -> int:
    if not 1 <= v <= 4094:
        raise ValueError(f"VLAN {v} outside 1-4094")
    return v


Vid = Annotated[int, AfterValidator(_vid)]


def _mac(v: str) -> str:
    v = v.strip().lower().replace("-", ":")
    if not _MAC.match(v):
        raise ValueError(f"{v!r} is not a MAC address like 02:00:00:00:00:01")
    if int(v[:2], 16) & 1:
        raise ValueError(f"{v} is a multicast address; FDB entries are unicast")
    if v == "00:00:00:00:00:00":
        raise ValueError("the zero MAC cannot be an FDB entry")
    return v


Mac = Annotated[str, AfterValidator(_mac)]


class PortMode(str, Enum):
    access = "access"
    trunk = "trunk"


# variants: pure = BPF hash map FDB; enetstl = bucketised table with the module's SIMD find + CRC32-C
__all__ = ["AttachMode", "L2SwitchConfig", "Port", "PortMode", "StaticEntry", "Variant"]


class Port(Model):
    name: str = Field(min_length=1, max_length=15, description="interface name in the switch's netns")
    mode: PortMode = PortMode.access
    vlan: Optional[Vid] = Field(default=None, validate_default=True,
                                description="access: the port's VLAN (untagged)")
    vlans: Optional[list[Vid]] = Field(default=None, validate_default=True,
                                       description="trunk: allowed VLANs (tagged)")
    native_vlan: Optional[Vid] = Field(default=None, validate_default=True,
                                       description="trunk: VLAN of untagged frames (sent untagged)")
    learning: bool = True
    untagged_only: bool = Field(
        default=False, validate_default=True,
        description="access: drop frames tagged with the port's own VLAN (take untagged and "
                    "priority-tagged frames only). By default they are that VLAN's frames, as on "
                    "the Linux bridge (an access port is a member of its PVID) and most switches")

    @field_validator("vlan")
    @classmethod
    def _access_vlan(cls, v, info: ValidationInfo):
        mode = info.data.get("mode")
        if mode == PortMode.access and v is None:
            raise ValueError("an access port needs its VLAN")
        if mode == PortMode.trunk and v is not None:
            raise ValueError("a trunk port takes 'vlans' (and 'native_vlan'), not 'vlan'")
        return v

    @field_validator("vlans")
    @classmethod
    def _trunk_vlans(cls, v, info: ValidationInfo):
        mode = info.data.get("mode")
        if mode == PortMode.trunk:
            if not v:
                raise ValueError("a trunk port needs at least one VLAN")
            dup = sorted({x for x in v if v.count(x) > 1})
            if dup:
                raise ValueError(f"VLAN listed twice: {dup}")
        elif mode == PortMode.access and v is not None:
            raise ValueError("an access port has one 'vlan', not 'vlans'")
        return v

    @field_validator("native_vlan")
    @classmethod
    def _native(cls, v, info: ValidationInfo):
        if v is not None and info.data.get("mode") == PortMode.access:
            raise ValueError("only a trunk port has a native VLAN")
        return v

    @field_validator("untagged_only")
    @classmethod
    def _untagged_only(cls, v, info: ValidationInfo):
        if v and info.data.get("mode") == PortMode.trunk:
            raise ValueError("untagged_only is for access ports (a trunk takes its VLANs tagged)")
        return v

    @property
    def pvid(self) -> int:
        """VLAN of untagged frames on this port (0: untagged frames are dropped)."""
        return (self.vlan if self.mode == PortMode.access else self.native_vlan) or 0

    def tagged_vlans(self) -> set[int]:
        return set(self.vlans or []) - {self.pvid} if self.mode == PortMode.trunk else set()

    def member_vlans(self) -> set[int]:
        return self.tagged_vlans() | ({self.pvid} if self.pvid else set())


class StaticEntry(Model):
    """A static FDB entry: never aged, and never learned over: frames from its MAC on another
    port do not move it (the Linux bridge's `bridge fdb add ... master static sticky`; a plain
    Linux `static` entry would move)."""
    mac: Mac
    vlan: Vid
    port: str = Field(min_length=1, description="name of a configured port")


class L2SwitchConfig(NFConfig):
    name: str = instance_name("l2sw")
    aging_time: Annotated[float, RUNTIME] = Field(default=300.0, ge=0, le=MAX_SECONDS,
                                                  description="seconds; 0 = never age; changeable "
                                                              "at runtime; at most the Linux bridge's "
                                                              "largest (42949672)")
    fdb_size: int = Field(default=65536, ge=16, le=1 << 22)
    seed: Optional[int] = Field(default=None, ge=0, le=(1 << 64) - 1,
                                description="secret of the eNetSTL FDB's bucket choice; unset (the "
                                            "default): drawn from the kernel's random source at "
                                            "`nf up`; set it only to reproduce a layout (the pure "
                                            "variant's hash map is seeded by the kernel either way)")
    ports: list[Port] = Field(min_length=1, max_length=MAX_PORTS)
    static_entries: Annotated[list[StaticEntry], RUNTIME] = Field(
        default=[], description="entries that never age and are never learned over (a frame from "
                                "the MAC on another port does not move it: Linux's `static sticky`)")

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[Port]):
        seen: dict[str, int] = {}
        for i, p in enumerate(ports):
            if p.name in seen:
                raise ValueError(f"duplicate port {p.name!r} (ports[{seen[p.name]}] and ports[{i}])")
            seen[p.name] = i
        return ports

    @field_validator("static_entries")
    @classmethod
    def _statics(cls, entries: list[StaticEntry], info: ValidationInfo):
        size = info.data.get("fdb_size")
        if size is not None and len(entries) > size:      # before anything loads: the table is full
            raise ValueError(f"{len(entries)} entries do not fit in fdb_size {size} (raise fdb_size, "
                             "at most 4194304; learned entries need room too)")
        vlans = {p.name: p.member_vlans() for p in info.data.get("ports") or []}   # once per port
        seen: set[tuple[str, int]] = set()
        for i, e in enumerate(entries):
            vl = vlans.get(e.port)
            if vl is None:
                raise ValueError(f"static_entries[{i}].port: {e.port!r} is not a configured port")
            if e.vlan not in vl:
                raise ValueError(f"static_entries[{i}].vlan: port {e.port!r} does not carry VLAN {e.vlan}")
            if (e.mac, e.vlan) in seen:
                raise ValueError(f"static_entries[{i}]: {e.mac} on VLAN {e.vlan} listed twice")
            seen.add((e.mac, e.vlan))
        return entries

    def interface_names(self) -> list[str]:
        return [p.name for p in self.ports]

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(name)
