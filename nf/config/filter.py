"""Config of the filter NF (configs/filter.yaml): the base program's drop rules."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from nf.config.base import PROGRAM, NFConfig, instance_name


class FilterConfig(NFConfig):
    name: str = instance_name("filter")
    interfaces: list[str] = Field(default_factory=list, description="empty inside a chain")
    # range per element (an error names the entry, drop_dports[1]); at most BASE_MAX_PORTS /
    # BASE_MAX_PROTOS (nf.datapath, 4 each), which BaseCfg.make checks again. Rules are rodata.
    drop_dports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], PROGRAM] = Field(
        default_factory=list, max_length=4)
    drop_l4_protos: Annotated[list[Annotated[int, Field(ge=1, le=255)]], PROGRAM] = Field(
        default_factory=list, max_length=4)
    drop_fragments: Annotated[bool, PROGRAM] = False

    @field_validator("interfaces")
    @classmethod
    def _unique(cls, v):
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise ValueError(f"interface listed twice: {dup}")
        return v

    @field_validator("variant")
    @classmethod
    def _pure(cls, v):
        if v == "enetstl":
            raise ValueError("the filter has no eNetSTL variant (auto or pure)")
        return v
