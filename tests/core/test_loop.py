"""decode(): batching, determinism, per-row stopping and accounting."""

from __future__ import annotations

import math

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.callbacks import TraceRecorder
from mdsample.core.rules import BUILTIN_RULES
from mdsample.core.schedule import tokens_this_step
from mdsample.errors import ConfigError
from tests.core.toys import MixingDenoiser, ProductDenoiser

ADAPTIVE = {"klass": {"conf_threshold": 0.6, "kl_threshold": 0.05}, "med": {"entropy_threshold": 0.5}}


def make_rule(name):
    return BUILTIN_RULES[name](**ADAPTIVE.get(name, {}))


def prompts(b):
    return torch.randint(0, 10, (b, 3), generator=torch.Generator().manual_seed(7))


def decode_rows(model, name, prompt, schedule, frozen_cols=()):
    state = MaskedState.blank(prompt.shape[0], 12, model.mask_id)
    state = MaskedState(torch.cat([prompt, state.tokens], 1), model.mask_id, gen_start=prompt.shape[1])
    for c in frozen_cols:
        state.tokens[:, c] = 2
        state.frozen[:, c] = True
    return decode(model, state, make_rule(name), schedule=schedule, stats_dtype=torch.float64)


@pytest.mark.parametrize("name", ["klass", "confidence", "med", "ar_med", "eb", "threshold", "margin", "entropy"])
@pytest.mark.parametrize("block_length", [12, 4])
def test_batched_equals_row_by_row(name, block_length):
    model = MixingDenoiser(length=15, seed=3, sharpness=6.0)
    p = prompts(4)
    schedule = BlockSchedule(steps=12, block_length=block_length)
    batched = decode_rows(model, name, p, schedule, frozen_cols=(9,))
    for i in range(4):
        single = decode_rows(model, name, p[i : i + 1], schedule, frozen_cols=(9,))
        assert torch.equal(batched.tokens[i], single.tokens[0])
        assert int(batched.nfe[i]) == int(single.nfe[0])
        assert torch.equal(batched.commit_step[i], single.commit_step[0])


def test_finished_rows_cost_nothing_more():
    model = MixingDenoiser(length=15, seed=1, sharpness=6.0)
    calls = []

    def counting(tokens, **kw):
        calls.append(tokens.shape[0])
        return model(tokens)

    counting.mask_id, counting.vocab_size = model.mask_id, model.vocab_size
    state = MaskedState.blank(3, 12, model.mask_id, prompt=prompts(1))
    state.tokens[1, 3:] = 1  # row 1 has nothing to fill
    state.frozen[1, 3:] = True
    state.tokens[2, 3:13] = 1  # row 2 has two masked positions
    state.frozen[2, 3:13] = True
    result = decode(counting, state, make_rule("confidence"))
    assert result.nfe.tolist() == [12, 0, 2]
    assert calls[:2] == [2, 2] and all(c == 1 for c in calls[2:]) and len(calls) == 12


def test_same_seed_same_tokens_and_different_seed_differs():
    model = MixingDenoiser(length=15, seed=0, sharpness=2.0)

    def sample(seed):
        state = MaskedState.blank(6, 12, model.mask_id, prompt=prompts(1))
        g = torch.Generator().manual_seed(seed)
        return decode(model, state, make_rule("random"), chooser=TokenChooser(temperature=1.0), generator=g).tokens

    assert torch.equal(sample(5), sample(5))
    assert not torch.equal(sample(5), sample(6))


def test_product_distribution_klass_commits_everything_confident_after_history():
    """With a fixed product distribution the KL is exactly 0 from the second step on: after H steps every
    confident position is ready at once, so KLASS needs H + (steps for the unconfident ones)."""
    probs = torch.tensor([[0.97, 0.01, 0.01, 0.01]] * 6 + [[0.4, 0.3, 0.2, 0.1]] * 2, dtype=torch.float64)
    logits = torch.log(probs).unsqueeze(0)
    mask_id = 4
    logits = torch.cat([logits, torch.full((1, 8, 1), -1e4, dtype=torch.float64)], -1)
    model = ProductDenoiser(logits, mask_id)
    state = MaskedState.blank(1, 8, mask_id)
    rule = BUILTIN_RULES["klass"](conf_threshold=0.9, kl_threshold=1e-6, history=2)
    result = decode(model, state, rule, stats_dtype=torch.float64)
    # step 0, 1: fallback one each (confident ones first); step 1 checks stability: KL(step0) is vs zeros -> not
    # stable; step 2: the 4 remaining confident ones at once; then the two unconfident ones one per step.
    assert int(result.nfe[0]) == 5
    assert sorted(result.commit_step[0].tolist()) == [0, 1, 2, 2, 2, 2, 3, 4]


def test_trace_recorder_and_schedule_errors():
    model = MixingDenoiser(length=15, seed=0)
    trace = TraceRecorder(rows=1)
    state = MaskedState.blank(2, 12, model.mask_id, prompt=prompts(1))
    decode(model, state, make_rule("confidence"), schedule=BlockSchedule(6, 4), callbacks=[trace])
    assert len(trace.frames) == 6 and trace.frames[0].shape == (1, 15)
    with pytest.raises(ConfigError, match="block_length"):
        BlockSchedule(12, 5).resolve(12)
    with pytest.raises(ConfigError, match="multiple of the number of blocks"):
        BlockSchedule(5, 4).resolve(12)


def test_maskgit_follows_cosine_schedule():
    model = MixingDenoiser(length=19, seed=0)
    state = MaskedState.blank(1, 16, model.mask_id, prompt=prompts(1))
    result = decode(model, state, BUILTIN_RULES["maskgit"](), schedule=BlockSchedule(steps=4),
                    chooser=TokenChooser(temperature=1.0), generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(result.commit_step[0, 3:], minlength=4).tolist()
    # still masked after step s: floor(16 cos(pi/2 (s+1)/4)) = 14, 11, 6, 0
    assert counts == [2, 3, 5, 6]


def test_cosine_counts_come_from_one_ratio_table():
    """The cosine schedule reads its ratios from one float64 table made on the CPU (so the host's chunk plan and a
    GPU agree on every count); the counts are those of the formula, cos(pi/2 (s+1)/S) computed per step."""
    for steps in (1, 3, 4, 7, 16, 31):
        step = torch.arange(steps).repeat_interleave(65)
        n0 = torch.arange(65).repeat(steps)
        k = tokens_this_step("cosine", n0, n0, step, steps)
        ratio = torch.tensor([math.cos(math.pi / 2 * (s + 1) / steps) for s in step.tolist()], dtype=torch.float64)
        formula = (n0 - torch.floor(n0.double() * ratio).long()).clamp_min(1)
        formula = torch.where(step >= steps - 1, n0, formula)
        assert torch.equal(k, torch.minimum(formula, n0))


ADAPTIVE_CASES = [
    ("med", {"entropy_threshold": 0.3}),
    ("ar_med", {"entropy_threshold": 0.3}),
    ("eb", {"gamma": 0.2}),
    ("threshold", {"threshold": 0.9}),
]


@pytest.mark.parametrize(("name", "options"), ADAPTIVE_CASES)
def test_adaptive_rules_commit_confident_positions_together(name, options):
    """Six near-certain positions and two uncertain ones: adaptive rules take the six in one step (the mask
    token's logit is forbidden by the loop, which must not turn entropies into NaN)."""
    probs = torch.tensor([[0.995, 0.002, 0.002, 0.001]] * 6 + [[0.4, 0.3, 0.2, 0.1]] * 2, dtype=torch.float64)
    logits = torch.cat([torch.log(probs), torch.zeros(8, 1, dtype=torch.float64)], -1).unsqueeze(0)
    model = ProductDenoiser(logits, mask_id=4)
    result = decode(model, MaskedState.blank(1, 8, 4), BUILTIN_RULES[name](**options))
    assert sorted(result.commit_step[0].tolist())[:6] == [0] * 6
    assert int(result.nfe[0]) == 3


def test_conditioning_follows_the_rows_when_finished_rows_drop_out():
    """Per-row conditioning tensors are subset with the rows still decoding, so a row always sees its own."""
    model = MixingDenoiser(length=15, seed=2, sharpness=6.0)

    def conditioned(tokens, shift):
        return model(tokens) + shift.view(-1, 1, 1) * torch.arange(model.vocab_size)

    conditioned.mask_id, conditioned.vocab_size = model.mask_id, model.vocab_size
    shift = torch.tensor([0.0, 0.5, -0.5])

    def run(rows):
        state = MaskedState.blank(len(rows), 12, model.mask_id, prompt=prompts(1))
        if 0 in rows:  # row 0 starts nearly full, so it finishes first and drops out of the batch
            state.tokens[rows.index(0), 3:13] = 1
            state.frozen[rows.index(0), 3:13] = True
        return decode(conditioned, state, make_rule("confidence"), conditioning={"shift": shift[rows]})

    batched = run([0, 1, 2])
    for i in range(3):
        assert torch.equal(batched.tokens[i], run([i]).tokens[0])
    assert batched.nfe.tolist() == [2, 12, 12]


def test_mode_confidence_makes_the_order_independent_of_the_draw():
    """With a fixed product distribution, "mode" commits positions in order of their peak probability whatever
    tokens are drawn; "drawn" follows the draws; at temperature 0 the two are identical."""
    peaks = [0.9, 0.5, 0.8, 0.6, 0.7]
    probs = torch.tensor([[p, 1 - p] for p in peaks], dtype=torch.float64)
    logits = torch.cat([torch.log(probs), torch.full((5, 1), -1e4, dtype=torch.float64)], -1).unsqueeze(0)
    model = ProductDenoiser(logits, mask_id=2)

    def order(confidence, seed, temperature=1.0):
        state = MaskedState.blank(1, 5, 2)
        result = decode(model, state, make_rule("confidence"), chooser=TokenChooser(temperature=temperature),
                        generator=torch.Generator().manual_seed(seed), confidence=confidence)
        return result.commit_step[0].tolist()

    assert {tuple(order("mode", s)) for s in range(8)} == {(0, 4, 1, 3, 2)}
    assert len({tuple(order("drawn", s)) for s in range(8)}) > 1
    assert order("mode", 0, 0.0) == order("drawn", 0, 0.0)
    with pytest.raises(ConfigError, match="decode.confidence"):
        order("peak", 0)
