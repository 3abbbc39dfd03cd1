"""The captured step: static shapes (batch buckets, padding rows) and its eager fallback give the same tokens."""

from __future__ import annotations

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.capture import StepRunner, bucket
from mdsample.core.infill import EarlyExit
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError
from tests.core.test_cache import (
    GEN,
    MASK,
    UNEVEN,
    one_thread,  # noqa: F401  (autouse: these tiny models run on one thread)
    prompts,
    run,
    tiny_lean,
)
from tests.core.toys import MixingDenoiser


def test_buckets_are_powers_of_two_capped_at_the_batch():
    assert [bucket(n, 8) for n in range(1, 9)] == [1, 2, 4, 4, 8, 8, 8, 8]
    assert [bucket(n, 6) for n in (3, 5, 6)] == [4, 6, 6]


def test_modes_resolve_by_device_and_denoiser():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not StepRunner("auto", cpu, capturable=True).static
    on = StepRunner("on", cpu)
    assert on.static and not on.graphs and on.batch(3, 8) == 4
    assert not StepRunner("off", cpu).static and StepRunner("off", cpu).batch(3, 8) == 3
    assert StepRunner("auto", cuda, capturable=True).graphs
    assert not StepRunner("auto", cuda, capturable=False).static
    with pytest.raises(ConfigError, match="decode.capture='always'"):
        StepRunner("always", cpu)


@pytest.mark.parametrize("rule", ["confidence", "klass"])
@pytest.mark.parametrize("mode", ["none", "prefix", "dual"])
def test_static_step_falls_back_to_eager_with_the_same_tokens(rule, mode):
    """capture=on on the CPU runs the static-shape step eagerly: calls are padded to batch buckets as rows finish,
    the padding rows (and under a cache their spare cache rows) change nothing."""
    p = prompts(4, seed=4)
    eager, static = tiny_lean(4), tiny_lean(4)
    plain = run(eager, rule, p, cache=mode, frozen=UNEVEN, capture="off")
    padded = run(static, rule, p, cache=mode, frozen=UNEVEN, capture="on")
    assert torch.equal(plain.tokens, padded.tokens) and torch.equal(plain.nfe, padded.nfe)
    assert padded.graphs == 0
    assert {b for _, b, _ in eager.calls} - {1, 2, 4}  # rows finishing leave odd batch sizes ...
    assert {b for _, b, _ in static.calls} <= {1, 2, 4}  # ... which the static step pads to buckets


def test_auto_on_the_cpu_is_the_eager_step():
    p = prompts(4, seed=4)
    model = tiny_lean(4)
    auto = run(model, "confidence", p, cache="dual", frozen=UNEVEN)
    assert auto.graphs == 0 and {b for _, b, _ in model.calls} - {1, 2, 4}


def test_drawn_tokens_and_early_exit_survive_the_static_step():
    """A drawing chooser runs outside the captured call on the same generator; early exit reads padded answers."""
    p = prompts(3, seed=5)
    answer = torch.arange(13, 15).expand(3, 2)

    def go(capture):
        state = MaskedState.blank(3, GEN, MASK, prompt=p)
        state.tokens[0, 9:] = 1
        state.frozen[0, 9:] = True
        return decode(tiny_lean(5), state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(GEN, 4),
                      chooser=TokenChooser(temperature=1.0), generator=torch.Generator().manual_seed(0),
                      early_exit=EarlyExit(2.0, answer), cache="dual", capture=capture)

    off, on = go("off"), go("on")
    assert torch.equal(off.tokens, on.tokens) and torch.equal(off.state.exited, on.state.exited)


def test_any_denoiser_runs_the_static_step():
    model = MixingDenoiser(vocab=MASK + 1, length=15, seed=2, sharpness=6.0)
    results = []
    for capture in ("off", "on"):
        state = MaskedState.blank(3, GEN, MASK, prompt=prompts(3))
        state.tokens[1, 6:] = 1
        state.frozen[1, 6:] = True
        results.append(decode(model, state, BUILTIN_RULES["margin"](), capture=capture).tokens)
    assert torch.equal(*results)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("mode", ["none", "dual"])
def test_cuda_graphs_give_the_eager_tokens(mode):
    p = prompts(4, seed=4).cuda()
    results = []
    for capture in ("off", "on"):
        model = tiny_lean(4, dtype=torch.float64, counting=False)
        model.model.cuda()
        state = MaskedState.blank(4, GEN, MASK, prompt=p, device="cuda")
        for row, cols in UNEVEN.items():
            state.tokens[row, [3 + c for c in cols]] = 1
            state.frozen[row, [3 + c for c in cols]] = True
        results.append(decode(model, state, BUILTIN_RULES["klass"](conf_threshold=0.5, kl_threshold=0.05),
                              schedule=BlockSchedule(GEN, 4), cache=mode, capture=capture))
    assert results[1].graphs > 0 and 0 < results[1].capture_s < float(results[1].wall_s.max())
    assert results[0].graphs == 0 and results[0].capture_s == 0
    assert torch.equal(results[0].tokens, results[1].tokens)
