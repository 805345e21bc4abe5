"""nf/config/sketch.py: the example loads; invalid configs are refused naming the field, and a
sketch too large for a per-CPU bank is refused with a message saying what fits."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from nf.config import ConfigError, load, validate
from nf.config.sketch import (MAX_PERCPU_CELLS, Action, Counters, KeyKind, SketchConfig)

ROOT = Path(__file__).resolve().parents[3]


def errors_of(data) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as ei:
        validate(data, SketchConfig)
    return ei.value.errors


def test_example_config_loads():
    cfg = load(ROOT / "configs" / "sketch.yaml", SketchConfig)
    assert (cfg.depth, cfg.width, cfg.key, cfg.counters) == (4, 1024, KeyKind.five_tuple, Counters.per_cpu)
    assert cfg.threshold.fraction == 0.01 and cfg.threshold.q16 == 655
    assert cfg.action == Action.monitor and cfg.nitro.p == 0.0625 and not cfg.nitro.enabled


def test_defaults_and_bounds():
    cfg = validate({}, SketchConfig)
    assert cfg.threshold.absolute == 1000 and cfg.threshold.q16 == 1000
    assert cfg.epsilon == pytest.approx(math.e / 1024) and cfg.delta == pytest.approx(math.exp(-4))
    # the largest per-CPU sizes that fit, and the same sizes shared
    assert MAX_PERCPU_CELLS == 8178
    from nf.config.sketch import BANK_HEADER
    from nf.nfs.sketch import BANK_HDR        # the mirror of struct sketch_bank (BTF-checked)
    assert BANK_HEADER == BANK_HDR
    validate({"depth": 1, "width": 4096}, SketchConfig)
    validate({"depth": 3, "width": 2048}, SketchConfig)
    validate({"depth": 16, "width": 256}, SketchConfig)
    validate({"depth": 7, "width": 1024}, SketchConfig)
    validate({"depth": 16, "width": 32768, "counters": "shared"}, SketchConfig)
    assert errors_of({"depth": 16, "width": 65536, "counters": "shared"})[0][1].endswith("(4 MiB map value) can hold")


@pytest.mark.parametrize("data,field,text", [
    ({"depth": 0}, "depth", "depth must be in 1..16"),
    ({"depth": 17}, "depth", "depth must be in 1..16"),
    ({"width": 1000}, "width", "power of two"),
    ({"width": 1}, "width", "power of two"),
    ({"width": 0}, "width", "power of two"),
    ({"threshold": {"absolute": 0}}, "threshold.absolute", "threshold must be > 0"),
    ({"threshold": {"absolute": -5}}, "threshold.absolute", "threshold must be > 0"),
    ({"threshold": {"fraction": 0}}, "threshold.fraction", "(0, 1]"),
    ({"threshold": {"fraction": 1.5}}, "threshold.fraction", "(0, 1]"),
    ({"threshold": {"fraction": 1e-6}}, "threshold.fraction", "Q16 resolution"),
    ({"threshold": {}}, "threshold", "exactly one"),
    ({"threshold": {"absolute": 5, "fraction": 0.1}}, "threshold", "exactly one"),
    ({"nitro": {"enabled": True, "p": 0}}, "nitro.p", "(0, 1]"),
    ({"nitro": {"enabled": True, "p": 1e-6}}, "nitro.p", "too small"),
    ({"key": "vlan"}, "key", "five_tuple"),
    ({"count": "flows"}, "count", "packets"),
    ({"counters": "global"}, "counters", "per_cpu"),
    ({"action": "redirect"}, "", "redirect needs redirect_to"),
    ({"redirect_to": "eth0"}, "", "only used with action: redirect"),
    ({"topk": 20, "candidates": 10}, "", "cannot exceed what the datapath keeps"),
    ({"seed": -1}, "seed", "greater than or equal"),
    ({"epoch_s": 0}, "epoch_s", "greater than"),
    ({"colour": "red"}, "colour", "Extra inputs"),
])
def test_invalid_configs_name_the_field(data, field, text):
    errs = errors_of(data)
    assert any(loc == field and text in msg for loc, msg in errs), errs


@pytest.mark.parametrize("d,w,fit", [(4, 2048, "width <= 1024"), (1, 8192, "width <= 4096"),
                                     (16, 512, "width <= 256"), (8, 1024, "width <= 512")])
def test_percpu_limit_says_what_fits(d, w, fit):
    errs = errors_of({"depth": d, "width": w})
    (loc, msg), = errs
    assert loc == ""
    assert "32768 bytes" in msg and "d x w <= 8178" in msg and fit in msg and "counters: shared" in msg
    assert f"with depth {d}" in msg


def test_yaml_error_names_file_and_field(tmp_path):
    p = tmp_path / "sk.yaml"
    p.write_text("depth: 4\nwidth: 1000\n")
    with pytest.raises(ConfigError) as ei:
        load(p, SketchConfig)
    assert str(p) in str(ei.value) and "width: " in str(ei.value) and "power of two" in str(ei.value)
