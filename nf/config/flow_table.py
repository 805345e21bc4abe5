"""Config of the cuckoo flow table (configs/flow_table.yaml).

Everything checkable without the system is checked here: addresses, ports, protocols, actions,
the table size, duplicate rules. An invalid rule is rejected with its position and its text
(``rules[2]: rule 'udp 10.0.0.1:53 -> 10.0.0.9:53 redirect': redirect needs a port``), before
anything loads. Whether interfaces exist is checked by the controller against the namespace.
"""
from __future__ import annotations

import ipaddress
from enum import Enum
from typing import Annotated, Optional

from pydantic import Field, field_validator, model_validator

from nf.config.base import (MAX_SECONDS, PROGRAM, RUNTIME, AttachMode, Model, NFConfig, Variant,
                            instance_name)
from nf.models.flow_table import FT_MAX_BUCKETS, FT_SEARCH_MAX, FT_SLOTS, flow_text, proto_number


class Action(str, Enum):
    pass_ = "pass"
    drop = "drop"
    redirect = "redirect"


class HashKind(str, Enum):
    crc32c = "crc32c"
    mul64 = "mul64"


__all__ = ["Action", "AttachMode", "FlowTableConfig", "HashKind", "Rule", "Variant"]


class Rule(Model):
    """A static flow: 5-tuple -> action. Ports only for tcp/udp (0 = port 0, not a wildcard:
    the table is exact-match)."""
    src: str
    dst: str
    proto: str | int = Field(default="udp", validate_default=True)
    sport: int = Field(default=0, ge=0, le=65535)
    dport: int = Field(default=0, ge=0, le=65535)
    action: Action = Action.pass_
    port: Optional[str] = Field(default=None, min_length=1, max_length=15,
                                description="redirect: egress interface")

    def text(self) -> str:
        p = f" port {self.port}" if self.port else ""
        try:
            proto = proto_number(self.proto)
        except ValueError:
            proto = self.proto
        if isinstance(proto, int) and (self.sport or self.dport) and proto not in (6, 17):
            flow = f"{flow_text(proto, self.src, 0, self.dst, 0)} ports {self.sport} {self.dport}"
        else:
            flow = flow_text(proto, self.src, self.sport, self.dst, self.dport)
        return f"{flow} {self.action.value}{p}"

    @field_validator("src", "dst")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            return str(ipaddress.ip_address(v.strip()))
        except ValueError:
            raise ValueError(f"{v!r} is not an IPv4 or IPv6 address") from None

    @field_validator("proto")
    @classmethod
    def _proto(cls, v):
        return proto_number(v)

    @model_validator(mode="after")
    def _coherent(self):
        def bad(msg: str):
            raise ValueError(f"rule '{self.text()}': {msg}")
        v = ipaddress.ip_address(self.src).version
        if v != ipaddress.ip_address(self.dst).version:
            bad("src and dst are of different IP versions")
        if (v, self.proto) == (6, 1):       # the datapath keys IPv6's ICMP by next header 58
            bad("ICMP over IPv6 is icmpv6 (protocol 58); a protocol 1 rule never matches it")
        if (v, self.proto) == (4, 58):
            bad("icmpv6 (protocol 58) is IPv6's; IPv4's ICMP is icmp (protocol 1)")
        if self.proto not in (6, 17) and (self.sport or self.dport):
            bad(f"protocol {self.proto} has no ports (only tcp/udp flows are keyed by port)")
        if self.action == Action.redirect and not self.port:
            bad("redirect needs a port")
        if self.action != Action.redirect and self.port:
            bad(f"a port is only meaningful with redirect, not {self.action.value}")
        return self


class FlowTableConfig(NFConfig):
    name: str = instance_name("ft")
    interfaces: list[str] = Field(default_factory=list,
                                  description="interfaces to attach to (none: test_run only)")
    size: int = Field(default=65536, ge=1, le=FT_MAX_BUCKETS * FT_SLOTS,
                      description="flows; rounded up to buckets of 16, a power of two")
    learn: Annotated[bool, PROGRAM] = Field(default=True,
                                            description="insert new flows from the datapath")
    default_action: Annotated[Action, PROGRAM] = Action.pass_
    default_port: Annotated[Optional[str], PROGRAM] = Field(default=None,
                                                            description="redirect: egress interface")
    non_ip_action: Annotated[Action, PROGRAM] = Action.pass_
    max_search: Annotated[int, PROGRAM] = Field(default=256, ge=1, le=FT_SEARCH_MAX,
                                                description="displacement search bound (buckets "
                                                            "examined)")
    seed: Optional[int] = Field(default=None, ge=0, le=(1 << 64) - 1,
                                description="secret of the keyed bucket choice; unset (the "
                                            "default): drawn from the kernel's random source "
                                            "at `nf up`; set it only to reproduce a layout")
    search_budget: Annotated[int, PROGRAM] = Field(
        default=256, ge=1, le=1 << 20,
        description="displacement-search steps per CPU per millisecond for datapath inserts; "
                    "past it new flows that need a search get the default action (counted)")
    hash: HashKind = Field(default=HashKind.mul64,
                           description="key hash: mul64 (five multiplies: cheap in eBPF and in "
                                       "the module) or crc32c (rte_hash's; SSE4.2 in the module, "
                                       "a table walk in eBPF)")
    idle_timeout: Annotated[float, RUNTIME] = Field(default=300.0, ge=0, le=MAX_SECONDS, description="seconds; "
                                                    "learned flows idle longer are expired by the "
                                                    "controller; 0 = never")
    rules: Annotated[list[Rule], RUNTIME] = Field(default_factory=list)

    @field_validator("interfaces")
    @classmethod
    def _ifaces(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"interfaces listed twice: {v}")
        return v

    @model_validator(mode="after")
    def _check(self):
        if self.default_action == Action.redirect and not self.default_port:
            raise ValueError("default_action redirect needs default_port")
        if self.non_ip_action == Action.redirect:
            raise ValueError("non_ip_action: pass or drop")
        seen: dict[tuple, int] = {}
        for i, r in enumerate(self.rules):
            k = (r.src, r.dst, r.proto, r.sport, r.dport)
            if k in seen:
                raise ValueError(f"rules[{i}] '{r.text()}' repeats the flow of rules[{seen[k]}]")
            seen[k] = i
        if len(self.rules) > self.size:
            raise ValueError(f"{len(self.rules)} rules do not fit a table of size {self.size}")
        return self
