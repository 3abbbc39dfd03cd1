"""Reference parity: at temperature 0, in the reference settings, `confidence` and `klass` give exactly the
reference loops' tokens (ALGORITHMS.md, "Reference semantics")."""

from __future__ import annotations

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.rules import BUILTIN_RULES
from tests.core.reference_loops import klass_generate, llada_generate
from tests.core.toys import MixingDenoiser

PROMPT = torch.tensor([[3, 1, 4, 1]])


def run(model, rule, gen_length, steps, block_length, prompt=PROMPT):
    state = MaskedState.blank(1, gen_length, model.mask_id, prompt=prompt)
    schedule = BlockSchedule(steps=steps, block_length=block_length)
    return decode(model, state, rule, schedule=schedule, stats_dtype=torch.float64)


@pytest.mark.parametrize(
    ("gen_length", "steps", "block_length"),
    [(16, 16, 16), (16, 8, 4), (16, 4, 8), (12, 12, 4), (16, 32, 8), (12, 6, 12)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confidence_matches_llada_generate(gen_length, steps, block_length, seed):
    model = MixingDenoiser(length=PROMPT.shape[1] + gen_length, seed=seed)
    expected = llada_generate(model, PROMPT, gen_length, steps, block_length)
    got = run(model, BUILTIN_RULES["confidence"](), gen_length, steps, block_length)
    assert torch.equal(got.tokens, expected)


@pytest.mark.parametrize(("gen_length", "block_length"), [(16, 16), (16, 4), (24, 8), (12, 3)])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("history", [1, 2, 3])
def test_klass_matches_reference(gen_length, block_length, seed, history):
    model = MixingDenoiser(length=PROMPT.shape[1] + gen_length, seed=seed, sharpness=6.0)
    conf, kl = 0.6, 0.05
    expected, calls, _ = klass_generate(model, PROMPT, gen_length, gen_length, block_length, conf, kl, history)
    rule = BUILTIN_RULES["klass"](conf_threshold=conf, kl_threshold=kl, history=history)
    got = run(model, rule, gen_length, gen_length, block_length)
    assert torch.equal(got.tokens, expected)
    assert int(got.nfe[0]) == calls


def test_klass_parity_cases_exercise_both_branches():
    """The parity grid is only meaningful if KLASS both fires and falls back in it."""
    fired = fell_back = 0
    for seed in range(4):
        for block_length in (16, 4):
            model = MixingDenoiser(length=20, seed=seed, sharpness=6.0)
            _, calls, ready = klass_generate(model, PROMPT, 16, 16, block_length, 0.6, 0.05, 2)
            fired += ready
            fell_back += calls - ready
    assert fired > 0 and fell_back > 0
    assert fired >= 5
