"""Uniform corruption, self-conditioning, post-mask editing, the schedule's spread and the threshold floor."""

from __future__ import annotations

import pytest
import torch

from mdsample.core import MaskedState, decode
from mdsample.core.callbacks import TraceRecorder
from mdsample.core.infill import EarlyExit
from mdsample.core.loop import Editing
from mdsample.core.rules import BUILTIN_RULES
from mdsample.core.rules.base import StepContext
from mdsample.core.schedule import BlockSchedule
from mdsample.core.stats import StepStats
from mdsample.errors import ConfigError
from tests.core.toys import MixingDenoiser


def uniform_state(batch: int = 3, length: int = 12, prompt: int = 2, seed: int = 0) -> MaskedState:
    g = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(0, 10, (batch, prompt), generator=g)
    return MaskedState.blank(batch, length - prompt, -1, prompt=prompt_ids, corruption="uniform", vocab_size=11,
                             generator=g)


class Recording(MixingDenoiser):
    """MixingDenoiser that records the canvases it was called on and the self-conditioning it received."""

    def __init__(self, self_conditioning: bool = False, **kw):
        super().__init__(**kw)
        self.self_conditioning = self_conditioning
        self.canvases: list[torch.Tensor] = []
        self.received: list[torch.Tensor | None] = []
        self.returned: list[torch.Tensor] = []

    def __call__(self, tokens, self_conditioning=None, **cond):
        self.canvases.append(tokens.clone())
        self.received.append(None if self_conditioning is None else self_conditioning.clone())
        out = super().__call__(tokens, **cond)
        self.returned.append(out.clone())
        return out


@pytest.mark.parametrize("name", sorted(BUILTIN_RULES))
def test_every_rule_fills_a_uniform_canvas_and_never_changes_a_committed_token(name):
    den = Recording(vocab=11, length=12)
    state = uniform_state()
    trace = TraceRecorder(rows=3)
    result = decode(den, state, BUILTIN_RULES[name](), schedule=BlockSchedule(steps=5), callbacks=[trace],
                    generator=torch.Generator().manual_seed(1))
    assert not state.masked.any() and state.finished.all()
    assert ((result.commit_step >= 0) == ~state.frozen).all()
    final = state.tokens
    for t, frame in enumerate(trace.frames):
        committed_by_then = (result.commit_step >= 0) & (result.commit_step <= t)
        assert torch.equal(frame[committed_by_then], final[committed_by_then])


def test_uncommitted_positions_are_renoised_every_step_and_the_mask_id_is_a_candidate():
    den = Recording(vocab=11, length=12)
    state = uniform_state(batch=2)
    decode(den, state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(steps=10),
           generator=torch.Generator().manual_seed(3))
    first, second = den.canvases[0], den.canvases[1]
    still = (first != second)[:, 2:]
    assert still.any(), "noise of uncommitted positions must be re-drawn"
    assert len(den.canvases) == 10


def test_uniform_decode_is_seeded():
    runs = []
    for _ in range(2):
        state = uniform_state()
        decode(Recording(vocab=11, length=12), state, BUILTIN_RULES["random"](), schedule=BlockSchedule(steps=4),
               generator=torch.Generator().manual_seed(5))
        runs.append(state.tokens.clone())
    assert torch.equal(*runs)


def test_a_self_conditioned_denoiser_gets_the_previous_step_logits():
    den = Recording(self_conditioning=True, vocab=11, length=10)
    state = MaskedState.blank(2, 10, -1, corruption="uniform", vocab_size=11, generator=torch.Generator())
    decode(den, state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(steps=5))
    assert den.received[0] is None
    for got, previous in zip(den.received[1:], den.returned, strict=False):
        torch.testing.assert_close(got, previous)


def test_self_conditioning_with_a_prompt_or_blocks_is_a_config_error():
    den = Recording(self_conditioning=True, vocab=11, length=12)
    with pytest.raises(ConfigError, match="self-conditioned"):
        decode(den, uniform_state(), BUILTIN_RULES["confidence"]())


def test_early_exit_on_a_uniform_canvas_is_a_config_error():
    state = uniform_state(batch=1)
    exit_ = EarlyExit(0.1, torch.tensor([[10, 11]]))
    with pytest.raises(ConfigError, match="uniform corruption"):
        decode(MixingDenoiser(vocab=11, length=12), state, BUILTIN_RULES["klass"](), early_exit=exit_)


def absorbing(batch=2, length=10, mask_id=10):
    tokens = torch.full((batch, length), mask_id)
    tokens[:, :2] = torch.tensor([1, 2])
    return MaskedState(tokens, mask_id, gen_start=2)


def test_editing_replaces_committed_tokens_the_model_contradicts_and_runs_post_steps():
    den = MixingDenoiser(vocab=11, length=10, sharpness=8.0)
    plain, edited = absorbing(), absorbing()
    rule = BUILTIN_RULES["threshold"](threshold=0.3)  # finishes the masks early, leaving steps for editing
    decode(den, plain, rule, schedule=BlockSchedule(steps=8))
    decode(den, edited, rule, schedule=BlockSchedule(steps=8), editing=Editing(threshold=0.05, max_post_steps=3))
    assert torch.equal(edited.tokens[:, :2], plain.tokens[:, :2]), "frozen prompt tokens are never edited"
    assert not torch.equal(edited.tokens, plain.tokens)
    assert (edited.nfe > plain.nfe).all() and (edited.nfe <= plain.nfe + 4).all()
    # after the last edit no position's proposal contradicts its token above the threshold, or the post steps ran out
    logits = den(edited.tokens)
    logits[..., den.mask_id] = float("-inf")
    probs = logits.softmax(-1)
    top = probs.max(-1)
    stable = ~((top.indices != edited.tokens) & (top.values > 0.05))[:, 2:].any(dim=1)
    assert (stable | (edited.nfe == plain.nfe + 4)).all()


def test_editing_needs_one_block():
    with pytest.raises(ConfigError, match="one block per decode"):
        decode(MixingDenoiser(vocab=11, length=10), absorbing(), BUILTIN_RULES["confidence"](),
               schedule=BlockSchedule(steps=8, block_length=4), editing=Editing(0.5))
    with pytest.raises(ConfigError, match="editing_threshold must be > 0"):
        Editing(0.0)


def test_spread_block_counts_from_the_block_length():
    den = MixingDenoiser(vocab=11, length=10)
    def canvas():  # a block that starts with two frozen prompt tokens, as LLaDA2's first canvas can
        tokens = torch.full((1, 10), 10)
        tokens[:, :2] = torch.tensor([1, 2])
        return MaskedState(tokens, 10, frozen=tokens != 10)

    masked, block = canvas(), canvas()
    decode(den, masked, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(steps=8))
    decode(den, block, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(steps=8, spread="block"))
    # 8 masked slots over 8 steps: one per step; the "block" spread counts all 10 slots: 2, 2, 1, 1, 1, 1
    assert int(masked.nfe) == 8 and int(block.nfe) == 6
    with pytest.raises(ConfigError, match="spread"):
        BlockSchedule(spread="sideways").resolve(8)


def test_threshold_floor_schedule_commits_at_least_the_schedule_count():
    conf = torch.tensor([[0.95, 0.2, 0.3, 0.1]])
    stats = StepStats(torch.log(torch.tensor([[[0.5, 0.5]] * 4])), torch.zeros(1, 4, dtype=torch.long))
    vars(stats)["conf"] = conf
    active = torch.ones(1, 4, dtype=torch.bool)
    ctx = StepContext(active, torch.tensor([2]), torch.tensor([0]), 2, 4)
    one = BUILTIN_RULES["threshold"](threshold=0.9).select(stats, ctx)
    floor = BUILTIN_RULES["threshold"](threshold=0.9, floor="schedule").select(stats, ctx)
    assert one.tolist() == [[True, False, False, False]]
    assert floor.tolist() == [[True, False, True, False]]
    with pytest.raises(ConfigError, match="floor"):
        BUILTIN_RULES["threshold"](floor="none")
