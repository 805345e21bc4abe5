"""Router configuration (YAML -> pydantic) and the cross-field checks done before anything loads.

    cfg = load_router_config("configs/router.yaml")     # ConfigError names every bad field

Field-level problems (malformed prefix/address/MAC, unknown keys) come from pydantic with their
dotted path; cross-field problems (overlapping interface subnets, a next hop on no connected
subnet, an unknown interface or group, duplicate routes) are collected by ``check()`` with the
same kind of path, e.g. ``routes[3].via[0]: next hop 192.0.2.9 is on no connected subnet``.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from nf.config.base import (PROGRAM, RUNTIME, ConfigError, Model, NFConfig, Variant,
                            instance_name, load, validate)

_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def _prefix(v: str) -> str:
    from nf.routes import RouteError, parse_prefix
    try:
        parse_prefix(v)
    except RouteError as e:
        raise ValueError(str(e)) from None
    return v


def _address(v: str) -> str:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        raise ValueError(f"malformed address {v!r}") from None
    return v


class Interface(Model):
    name: str = Field(min_length=1, max_length=15)
    ifindex: int | None = Field(None, ge=1, description="fixed ifindex (tests); else resolved by name")
    mac: str | None = Field(None, description="port MAC; default: the interface's own")
    addresses: list[str] = Field(default_factory=list, description="CIDR, e.g. 10.0.1.1/24")

    @field_validator("mac")
    @classmethod
    def _mac(cls, v):
        if v is not None and not _MAC.match(v):
            raise ValueError(f"malformed MAC {v!r} (want aa:bb:cc:dd:ee:ff)")
        return v

    @field_validator("addresses")
    @classmethod
    def _addrs(cls, v):
        for a in v:
            if "/" not in a:
                raise ValueError(f"address {a!r} needs a prefix length (e.g. 10.0.1.1/24)")
            try:
                ipaddress.ip_interface(a)
            except ValueError:
                raise ValueError(f"malformed interface address {a!r}") from None
        return v


class Group(Model):
    name: str = Field(min_length=1)
    via: list[str] = Field(min_length=1, max_length=8, description="ECMP next hops")

    @field_validator("via")
    @classmethod
    def _via(cls, v):
        return [_address(x) for x in v]


class Route(Model):
    prefix: str
    via: list[str] = Field(default_factory=list, max_length=8)
    dev: str | None = None
    group: str | None = None
    blackhole: bool = False
    unreachable: bool = False

    @field_validator("prefix")
    @classmethod
    def _pfx(cls, v):
        return _prefix(v)

    @field_validator("via")
    @classmethod
    def _via(cls, v):
        return [_address(x) for x in v]

    def target(self) -> str:
        """The route file spelling of this route's target."""
        if self.blackhole:
            return "blackhole"
        if self.unreachable:
            return "unreachable"
        if self.group:
            return f"group {self.group}"
        if self.via:
            return " ".join(f"via {g}" for g in self.via) + (f" dev {self.dev}" if self.dev else "")
        if self.dev:
            return f"dev {self.dev}"
        return ""


class Neighbour(Model):
    address: str
    mac: str
    dev: str | None = None

    @field_validator("address")
    @classmethod
    def _addr(cls, v):
        return _address(v)

    @field_validator("mac")
    @classmethod
    def _mac(cls, v):
        if not _MAC.match(v):
            raise ValueError(f"malformed MAC {v!r} (want aa:bb:cc:dd:ee:ff)")
        return v


class Icmp(Model):
    errors: bool = True
    echo: bool = True
    rate: int = Field(1000, ge=1, le=10_000_000, description="errors per second per CPU")
    burst: int = Field(100, ge=1, le=1_000_000)
    unreachable_routes: Literal["unreachable", "prohibit"] = Field(
        "unreachable", description="what `unreachable` routes answer: as Linux's unreachable routes "
        "(IPv4 3/1 host unreachable, IPv6 1/0 no route) or as its prohibit routes (3/13, 1/1 "
        "administratively prohibited). Mode fib answers what the kernel's route type says.")


class Sizes(Model):
    # upper bounds checked before anything loads: a 256-word chunk is 1 KiB, so 2^20 chunks are
    # a 1 GiB map (2^22 asked the kernel for 4 GiB: E2BIG after the route file was read)
    v4_chunks: int = Field(4096, ge=1, le=1 << 20, description="IPv4 /25+ chunks per bank")
    v6_chunks: int = Field(16384, ge=1, le=1 << 20, description="IPv6 table KiB per bank beyond its "
                           "2^16-entry root (hash slots, nodes, records: ~160 B per route)")
    trie_entries: int = Field(1 << 20, ge=1, le=1 << 24, description="LPM trie capacity per bank "
                                                                   "and family")
    neighbours: int = Field(65536, ge=16, le=1 << 22)


class RouterConfig(NFConfig):
    name: str = instance_name("router")
    # the variant is one rodata flag here (RT_F_PURE: the ECMP hash in BPF, not the kfunc)
    variant: Annotated[Variant, PROGRAM] = Field(default=Variant.auto, description="auto/enetstl: "
                                                 "the module's CRC-32C for ECMP when it is loaded; "
                                                 "pure: always the BPF one")
    mode: Literal["dir", "trie", "fib"] = "dir"
    interfaces: list[Interface] = Field(min_length=1)
    groups: Annotated[list[Group], RUNTIME] = Field(default_factory=list)
    routes: Annotated[list[Route], RUNTIME] = Field(default_factory=list)
    route_file: str | None = None
    neighbours: Annotated[list[Neighbour], RUNTIME] = Field(default_factory=list)
    learn_neighbours: Annotated[bool, PROGRAM] = True
    icmp: Annotated[Icmp, PROGRAM] = Icmp()
    sizes: Sizes = Sizes()
    ecmp_seed: Annotated[int, PROGRAM] = Field(0x5EED, ge=0, le=0xFFFFFFFF)

    @model_validator(mode="before")
    @classmethod
    def _use_module(cls, data):
        """`use_module: true/false` (the key before `variant`) is still read: auto / pure."""
        if isinstance(data, dict) and "use_module" in data:
            data = dict(data)
            um = data.pop("use_module")
            if "variant" in data:
                raise ValueError("use_module is the old spelling of variant: give one of them")
            if not isinstance(um, bool):
                raise ValueError(f"use_module: a boolean, got {um!r}")
            data["variant"] = "auto" if um else "pure"
        return data


def connected(cfg: RouterConfig) -> list[tuple[str, ipaddress.IPv4Interface | ipaddress.IPv6Interface]]:
    return [(i.name, ipaddress.ip_interface(a)) for i in cfg.interfaces for a in i.addresses]


def port_of_gateway(cfg: RouterConfig, gw: str, dev: str | None = None) -> str | None:
    """The interface whose connected subnet holds ``gw`` (restricted to ``dev`` when given)."""
    a = ipaddress.ip_address(gw)
    for name, itf in connected(cfg):
        if (dev is None or dev == name) and a.version == itf.version and a in itf.network:
            return name
    return None


def check(cfg: RouterConfig, source: str = "<config>") -> RouterConfig:
    errs: list[tuple[str, str]] = []
    names = [i.name for i in cfg.interfaces]
    for i, n in enumerate(names):
        if n in names[:i]:
            errs.append((f"interfaces[{i}].name", f"duplicate interface {n!r}"))
    nets: list[tuple[str, ipaddress._BaseNetwork]] = []
    for ii, itf in enumerate(cfg.interfaces):
        for ai, a in enumerate(itf.addresses):
            net = ipaddress.ip_interface(a).network
            for where, other in nets:
                if net.version == other.version and net.overlaps(other):
                    errs.append((f"interfaces[{ii}].addresses[{ai}]",
                                 f"subnet {net} overlaps {other} of {where}"))
            nets.append((f"interfaces[{ii}] ({itf.name})", net))
    gnames = [g.name for g in cfg.groups]
    for gi, g in enumerate(cfg.groups):
        if g.name in gnames[:gi]:
            errs.append((f"groups[{gi}].name", f"duplicate group {g.name!r}"))
        for vi, v in enumerate(g.via):
            if port_of_gateway(cfg, v) is None:
                errs.append((f"groups[{gi}].via[{vi}]", f"next hop {v} is on no connected subnet"))
    seen: dict[tuple, int] = {}
    for ri, r in enumerate(cfg.routes):
        kinds = sum([bool(r.via), r.group is not None, r.blackhole, r.unreachable])
        if kinds != 1 and not (kinds == 0 and r.dev):
            errs.append((f"routes[{ri}]", "give exactly one of via, group, blackhole, unreachable "
                                          "(or dev alone for a connected route)"))
        if r.dev is not None and r.dev not in names:
            errs.append((f"routes[{ri}].dev", f"unknown interface {r.dev!r}"))
        if r.group is not None and r.group not in gnames:
            errs.append((f"routes[{ri}].group", f"unknown group {r.group!r}"))
        fam = 6 if ":" in r.prefix else 4
        for vi, v in enumerate(r.via):
            if (6 if ":" in v else 4) != fam:
                errs.append((f"routes[{ri}].via[{vi}]", f"next hop {v} is not IPv{fam}"))
            elif port_of_gateway(cfg, v, r.dev) is None:
                errs.append((f"routes[{ri}].via[{vi}]", f"next hop {v} is on no connected subnet"
                             + (f" of {r.dev}" if r.dev else "")))
        key = ipaddress.ip_network(r.prefix)
        if key in seen:
            errs.append((f"routes[{ri}].prefix", f"duplicate route {key} (routes[{seen[key]}])"))
        seen[key] = ri
    for ni, n in enumerate(cfg.neighbours):
        if n.dev is not None and n.dev not in names:
            errs.append((f"neighbours[{ni}].dev", f"unknown interface {n.dev!r}"))
        elif port_of_gateway(cfg, n.address, n.dev) is None:
            errs.append((f"neighbours[{ni}].address", f"{n.address} is on no connected subnet"))
    if errs:
        raise ConfigError(source, errs)
    return cfg


def load_router_config(path: str | Path) -> RouterConfig:
    cfg = load(path, RouterConfig)
    if cfg.route_file and not Path(cfg.route_file).is_absolute():
        cfg.route_file = str((Path(path).parent / cfg.route_file).resolve())
    return check(cfg, str(path))


def validate_router_config(data: dict, source: str = "<config>") -> RouterConfig:
    return check(validate(data, RouterConfig, source), source)
