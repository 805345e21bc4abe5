"""Config of the heavy-hitter sketch (configs/sketch.yaml).

Everything the kernel would refuse later is refused here with a field path: d out of 1..16, w not
a power of two, a threshold <= 0, and per-CPU banks that do not fit the kernel's 32 KiB per-CPU
map value (the message says which sizes fit).
"""
from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

from pydantic import AliasChoices, Field, field_validator, model_validator

from nf.config.base import (MAX_SECONDS, PROGRAM, RUNTIME, AttachMode, Model, NFConfig, Variant,
                            instance_name)

MAX_D = 16                       # sketch.h SKETCH_MAX_D (and ENETSTL_MAX_D)
PERCPU_VALUE_MAX = 32 * 1024     # kernel PCPU_MIN_UNIT_SIZE: largest PERCPU_ARRAY value
BANK_HEADER = 56                 # sizeof(struct sketch_bank), incl. the kfunc's 16-byte cm header
MAX_PERCPU_CELLS = (PERCPU_VALUE_MAX - BANK_HEADER) // 4   # 8178 u32 counters per CPU
MAX_SHARED_CELLS = (4 << 20) // 4 - BANK_HEADER // 4        # KMALLOC_MAX_SIZE array value
MAX_W = 1 << 20
TOP_SLOTS = 16                   # sketch.h SKETCH_TOP: flows each CPU's top table keeps


# variants: pure = d seeded xxh32 in BPF; enetstl = the module's fused multi-hash + count + min
__all__ = ["Action", "AttachMode", "Counters", "CountWhat", "KeyKind", "Nitro", "SketchConfig",
           "Threshold", "Variant"]


class KeyKind(str, Enum):
    five_tuple = "five_tuple"
    src_ip = "src_ip"
    dst_ip = "dst_ip"
    src_dst = "src_dst"
    src_mac = "src_mac"


class CountWhat(str, Enum):
    packets = "packets"
    bytes = "bytes"


class Counters(str, Enum):
    per_cpu = "per_cpu"    # one bank per CPU, plain adds; the threshold is applied per CPU
    shared = "shared"      # one bank for all CPUs, atomic adds


class Action(str, Enum):
    monitor = "monitor"
    drop = "drop"
    redirect = "redirect"


class Threshold(Model):
    """Exactly one of ``absolute`` (estimate >= this many packets/bytes in the epoch) or
    ``fraction`` (estimate >= fraction x the epoch's total, once the total reaches min_total)."""
    absolute: Optional[int] = Field(default=None, description="packets or bytes per epoch")
    fraction: Optional[float] = Field(default=None, description="of the epoch total, (0, 1]")
    min_total: int = Field(default=1000, ge=1,
                           description="fraction mode: no flow is flagged before the epoch total reaches this")

    @field_validator("absolute")
    @classmethod
    def _abs(cls, v):
        if v is not None and v <= 0:
            raise ValueError(f"threshold must be > 0, got {v}")
        if v is not None and v >= 1 << 32:
            raise ValueError(f"threshold {v} does not fit the u32 counters")
        return v

    @field_validator("fraction")
    @classmethod
    def _frac(cls, v):
        if v is not None:
            if not 0 < v <= 1:
                raise ValueError(f"fraction must be in (0, 1], got {v}")
            if v < 1 / 65536:
                raise ValueError(f"fraction {v} is below the datapath's Q16 resolution (1/65536)")
        return v

    @model_validator(mode="after")
    def _one(self):
        if (self.absolute is None) == (self.fraction is None):
            raise ValueError("give exactly one of 'absolute' or 'fraction'")
        return self

    @property
    def q16(self) -> int:
        """Datapath value: the absolute count, or the fraction in Q16."""
        return self.absolute if self.absolute is not None else max(1, round(self.fraction * 65536))


class Nitro(Model):
    """NitroSketch: update the sketch for a geometric sample of the packets (probability p),
    adding 1/p (x bytes) per sampled packet."""
    enabled: bool = False
    p: float = Field(default=1 / 16, description="sampling probability, (0, 1]")

    @field_validator("p")
    @classmethod
    def _p(cls, v):
        if not 0 < v <= 1:
            raise ValueError(f"p must be in (0, 1], got {v}")
        if 1 / v >= 65536:
            raise ValueError(f"p = {v} is too small: 1/p must stay below 65536 (Q16 increment)")
        return v


class SketchConfig(NFConfig):
    name: str = instance_name("sketch")
    # `attach_mode:` (the key's first spelling) is still read
    attach: AttachMode = Field(default=AttachMode.auto, description="XDP attach mode",
                               validation_alias=AliasChoices("attach", "attach_mode"))
    depth: int = Field(default=4, description="rows d (hash functions), 1..16")
    width: int = Field(default=1024, description="counters per row w, a power of two")
    seed: Optional[int] = Field(default=None, ge=0, le=0xFFFFFFFF,
                                description="secret of the count-min rows (row i hashes with seed + "
                                            "i * 0x9E3779B1); unset (the default): drawn from the "
                                            "kernel's random source at `nf up`; set it only to "
                                            "reproduce counts")
    key: KeyKind = KeyKind.five_tuple
    count: CountWhat = CountWhat.packets
    counters: Counters = Counters.per_cpu
    threshold: Annotated[Threshold, PROGRAM] = Field(default_factory=lambda: Threshold(absolute=1000))
    # read by the controller only (`nf topk` defaults, the agent's epochs): the datapath never sees them
    topk: Annotated[int, RUNTIME] = Field(
        default=10, ge=1, le=65536,
        description="flows reported by topk(), the largest whatever the threshold: "
                    f"each CPU keeps its {TOP_SLOTS} largest itself; beyond that "
                    "the list goes on with heavy-hitter candidates")
    candidates: int = Field(default=1024, ge=1, le=1 << 20,
                            description="heavy-hitter candidate entries per epoch (flows over "
                                        "the threshold, with first-seen time and hits); past "
                                        "it flagged flows are still acted on, without an entry")
    epoch_s: Annotated[float, RUNTIME] = Field(default=10.0, gt=0, le=MAX_SECONDS,
                                               description="epoch length in seconds")
    history: Annotated[int, RUNTIME] = Field(default=16, ge=0, le=100000,
                                             description="past epochs kept by the controller")
    nitro: Nitro = Field(default_factory=Nitro)
    action: Annotated[Action, PROGRAM] = Action.monitor
    redirect_to: Annotated[Optional[str], PROGRAM] = Field(default=None, description="interface "
                                                           "for action: redirect")
    interfaces: list[str] = Field(default_factory=list, description="attach to these (empty: test_run only)")

    @field_validator("depth")
    @classmethod
    def _d(cls, v):
        if not 1 <= v <= MAX_D:
            raise ValueError(f"depth must be in 1..{MAX_D}, got {v}")
        return v

    @field_validator("width")
    @classmethod
    def _w(cls, v):
        if v < 2 or v & (v - 1):
            raise ValueError(f"width must be a power of two >= 2, got {v}")
        if v > MAX_W:
            raise ValueError(f"width must be at most {MAX_W}, got {v}")
        return v

    @model_validator(mode="after")
    def _fits(self):
        cells = self.depth * self.width
        if self.counters == Counters.per_cpu and cells > MAX_PERCPU_CELLS:
            fits = [f"d={d}: w<={_pow2_floor(MAX_PERCPU_CELLS // d)}" for d in (1, 2, 4, 8, 16)
                    if MAX_PERCPU_CELLS // d >= 2]
            raise ValueError(
                f"depth x width = {self.depth} x {self.width} = {cells} counters do not fit a "
                f"per-CPU bank: the kernel limits a per-CPU map value to {PERCPU_VALUE_MAX} bytes, "
                f"{BANK_HEADER} of them the bank header, so d x w <= {MAX_PERCPU_CELLS} "
                f"({', '.join(fits)}; with depth {self.depth}: width <= "
                f"{_pow2_floor(MAX_PERCPU_CELLS // self.depth)}), or use counters: shared")
        if self.counters == Counters.shared and cells > MAX_SHARED_CELLS:
            raise ValueError(f"depth x width = {cells} counters exceed the {MAX_SHARED_CELLS} a "
                             f"shared bank (4 MiB map value) can hold")
        if self.action == Action.redirect and not self.redirect_to:
            raise ValueError("action: redirect needs redirect_to (an interface name)")
        if self.action != Action.redirect and self.redirect_to:
            raise ValueError("redirect_to is only used with action: redirect")
        if self.topk > max(TOP_SLOTS, self.candidates):
            raise ValueError(f"topk ({self.topk}) cannot exceed what the datapath keeps: the "
                             f"{TOP_SLOTS} largest flows per CPU and candidates "
                             f"({self.candidates}) heavy hitters")
        return self

    @property
    def epsilon(self) -> float:
        """Count-min error factor e / w: estimates exceed the truth by at most epsilon x N ..."""
        import math
        return math.e / self.width

    @property
    def delta(self) -> float:
        """... for all but a delta = e^-d fraction of queries."""
        import math
        return math.exp(-self.depth)


def _pow2_floor(n: int) -> int:
    return 1 << (n.bit_length() - 1) if n >= 1 else 0
