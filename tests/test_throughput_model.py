"""The arithmetic behind benchmarks/text_throughput.py's sweep (benchmarks/throughput_model.py): the FLOP count and
roofline the targets divide by, the order the budget guard drops measurements in, the target checks, the tables,
and the decode pass-through options. Pure functions, no model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from throughput_model import Device, Shape, Spec, estimate_step_ms, plan, roofline, step_tokens, targets  # noqa: E402
from throughput_tables import merge, render  # noqa: E402

LLADA = Shape(vocab_size=126464, hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=32,
              intermediate_size=12288)
DREAM = Shape(vocab_size=152064, hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4,
              intermediate_size=18944)
H200ISH = Device(copy_bytes_per_s=4e12, gemm_flops_per_s=8e14, weight_bytes=16_000_000_000)


def test_linear_params_are_the_published_sizes_less_the_embedding():
    # LLaDA-8B: 8.02e9 parameters with both 0.52e9 vocabulary matrices; the embedding is a lookup, not a GEMM
    assert LLADA.linear_params == 32 * (4 * 4096**2 + 3 * 4096 * 12288) + 126464 * 4096
    assert 7.4e9 < LLADA.linear_params < 7.6e9
    # Dream-7B (Qwen2-7B): 7.6e9 with embedding and head; grouped-query q/k/v is 3584 x (28 + 8) x 128
    assert DREAM.linear_params == 28 * (3584 * 36 * 128 + 3584 * 3584 + 3 * 3584 * 18944) + 152064 * 3584
    assert 7.0e9 < DREAM.linear_params < 7.2e9


def test_step_tokens_per_cache_mode():
    args = dict(batch=2, prompt=128, gen=256, block=32, window=32, steps=256, shifted=False)
    assert step_tokens("none", step=40, **args) == (2 * 384, False)
    assert step_tokens("dual", step=32, **args) == (2 * 384, False)  # a block's first step refreshes
    assert step_tokens("dual", step=33, **args) == (2 * 32, True)
    assert step_tokens("prefix", step=33, **args) == (2 * (256 - 32), True)  # block 1 and everything after it
    assert step_tokens("prefix", step=255, **args) == (2 * 32, True)
    assert step_tokens("dual", step=33, **{**args, "shifted": True}) == (2 * 64, True)  # Dream's left neighbours
    assert step_tokens("dual", step=40, refresh_every=8, **args) == (2 * 384, False)  # decode.cache_refresh=8
    assert step_tokens("dual", step=41, refresh_every=8, **args) == (2 * 32, True)
    # KLASS under the dual cache: a one-block window, and a peek at each block after the first on its first step
    assert step_tokens("dual", step=32, peek=True, **args) == (2 * (384 + 32), True)
    assert step_tokens("dual", step=0, peek=True, **args) == (2 * 384, False)
    assert step_tokens("dual", step=33, peek=True, **args) == (2 * 32, True)


def test_roofline_is_max_of_weight_read_and_compute_averaged_over_the_second_half():
    one = roofline(LLADA, H200ISH, "none", 1, 128, 256, 32, 32, 256, False)
    flops = 2 * LLADA.linear_params * 384 + 4 * 32 * 4096 * 384 * 384
    assert one["flops_per_step"] == pytest.approx(flops)
    assert one["compute_ms"] == pytest.approx(flops / 8e14 * 1e3)
    assert one["roofline_ms"] == pytest.approx(max(4.0, flops / 8e14 * 1e3))
    dual = roofline(LLADA, H200ISH, "dual", 1, 128, 256, 32, 32, 256, False)
    # steps 128..255: 4 refreshes (full canvas) and 124 window steps (32 tokens), averaged
    window = 2 * LLADA.linear_params * 32 + 4 * 32 * 4096 * 32 * 384
    assert dual["flops_per_step"] == pytest.approx((4 * flops + 124 * window) / 128)
    assert dual["roofline_ms"] == pytest.approx((4 * max(4.0, flops / 8e11) + 124 * 4.0) / 128)
    big = roofline(LLADA, H200ISH, "dual", 8, 1024, 256, 32, 32, 256, False)
    assert big["roofline_kv_ms"] > big["roofline_ms"]  # a large batch's cache read counts only in the _kv variant


def test_estimate_uses_the_nearest_measured_run_and_never_goes_below_it():
    assert estimate_step_ms(4.0, "auto", []) == pytest.approx(1.5 * 4.0 + 15.0)
    measured = [(4.0, 10.0), (40.0, 70.0)]
    assert estimate_step_ms(5.0, "auto", measured) == pytest.approx(10.0 + 1.5)
    assert estimate_step_ms(30.0, "auto", measured) == pytest.approx(70.0)


def test_plan_puts_the_targets_denominators_first_and_covers_the_sweep_once():
    specs = plan(["confidence", "eb", "klass"], ["none", "dual"], ["auto", "off"], [1, 8, 32], [128, 1024], [1, 8],
                 ["confidence", "klass"], ["dual"], ["fast_dllm"], profile=True)
    assert specs[0] == Spec("forward", 1, 128)
    kinds = [s.kind for s in specs]
    first_reference, b8 = kinds.index("reference"), specs.index(Spec("forward", 8, 128))
    assert first_reference < b8  # the reference loops right after batch 1's plain loop and KLASS
    assert all(s.rule in ("confidence", "klass") for s in specs[:b8] if s.kind == "mdsample")
    assert len(set(specs)) == len(specs)
    sweep = {(s.batch, s.prompt) for s in specs if s.kind == "mdsample" and s.rule == "confidence"}
    assert sweep == {(b, p) for b in (1, 8, 32) for p in (128, 1024)}
    eb = [s for s in specs if s.rule == "eb"]
    assert len(eb) == 2 * 2 * 2 and specs.index(eb[0]) > kinds.index("profile")
    assert eb[:2] == [Spec("mdsample", 1, 128, "eb", "dual", "auto"), Spec("mdsample", 8, 128, "eb", "dual", "auto")]
    assert specs[-1] == Spec("mdsample", 32, 1024, "klass", "dual", "auto")


def row(**fields):
    base = dict(kind="mdsample", preset="llada8b", batch=1, prompt=128, cache="dual", capture="auto", floor_ms=4.0,
                roofline_ms=4.0, roofline_kv_ms=4.0, tokens_per_s=100.0, peak_gb=20.0, weight_read_ms=4.0,
                compute_ms=1.0, kv_read_ms=0.1, step_over_roofline=1.0)
    base.update(fields)
    return base


def test_targets():
    rows = [row(rule="confidence", step_ms=5.0), row(rule="klass", step_ms=5.5, peak_gb=20.5),
            row(rule="confidence", batch=8, step_ms=7.0, roofline_ms=4.0),
            dict(kind="reference", preset="llada8b", rule="fast_dllm_dual", model="fast_dllm", batch=1, prompt=128,
                 step_ms=50.0, tokens_per_s=20.0)]
    checks = {(c["target"], c["cell"]): c for c in targets(rows)}
    assert checks["b1 step / weight-read floor", "b1 p128"]["value"] == pytest.approx(1.25)
    assert checks["b1 step / weight-read floor", "b1 p128"]["met"]
    assert not checks["rule step / plain loop step", "b1 p128 klass"]["met"]  # 1.1x
    assert checks["KLASS peak / plain loop peak", "b1 p128"]["met"]  # 1.025x
    assert not checks["b8-64 step / roofline", "b8 p128"]["met"]  # 1.75x
    assert checks["tokens/s / Fast-dLLM best loop (own model)", "b1 p128"]["value"] == pytest.approx(5.0)


def test_tables_render_a_merged_report():
    report = dict(device_name="NVIDIA H200", torch="2.11", dtype="bfloat16", copy_bandwidth_gbs=4000.0,
                  gemm_tflops=800.0, decode={}, reference_error=None, skipped=[{"preset": "dream7b", "kind": "x"}],
                  presets={"llada8b": dict(weight_gb=14.9, floor_ms=4.0, same_tokens_as_reference={})},
                  rows=[row(rule=r, cache=c, capture=cap, step_ms=5.0) for r in ("confidence", "klass")
                        for c in ("none", "dual") for cap in ("auto", "off")])
    dream = dict(report, presets={"dream7b": dict(weight_gb=14.2, floor_ms=3.8)},
                 rows=[row(preset="dream7b", rule="confidence", batch=32, step_ms=9.0)])
    text = render(merge([report, dream]))
    assert "### llada8b" in text and "### dream7b" in text and "### Targets" in text
    assert "| confidence | 5.0 / 100 | 5.0 / 100 | 5.0 / 100 | 5.0 / 100 |" in text
    assert "skipped by the budget" in text


def test_decode_options_are_checked_against_decode():
    text_throughput = pytest.importorskip("text_throughput")
    assert text_throughput.decode_overrides(["cache_refresh=2", "decode.confidence=mode"], None, None) == {
        "cache_refresh": 2, "confidence": "mode"}
    with pytest.raises(SystemExit, match="no_such_option"):
        text_throughput.decode_overrides(["no_such_option=1"], None, None)
    with pytest.raises(SystemExit, match="cache"):
        text_throughput.decode_overrides(["cache=dual"], None, None)  # swept by --caches
