"""The corrector (core/corrector.py) against exact answers: a random-scan Gibbs sampler on a two-position model
whose conditionals come from a known joint, what may and may not be redrawn, and its NFE accounting."""

from __future__ import annotations

import pytest
import torch

from mdsample.core import Corrector, MaskedState, TokenChooser, correct, decode
from mdsample.core.loop import DecodeResult
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError
from tests.core.toys import MixingDenoiser

JOINT = torch.tensor([[0.42, 0.10], [0.05, 0.43]], dtype=torch.float64)
"""p(x0, x1) over tokens {0, 1}; token 2 is the mask."""


class JointDenoiser:
    """Logits of p(x_i | x_j) at a masked position i when the other position j is committed, else of p(x_i)."""

    mask_id, vocab_size = 2, 3

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        probs = torch.zeros(*tokens.shape, 3, dtype=torch.float64)
        for i, table in ((0, JOINT), (1, JOINT.T)):
            other = tokens[:, 1 - i]
            known = other != self.mask_id
            conditional = table[:, other.clamp_max(1)].T / table[:, other.clamp_max(1)].T.sum(-1, keepdim=True)
            probs[:, i, :2] = torch.where(known.unsqueeze(1), conditional, table.sum(1))
        return probs.clamp_min(1e-30).log()


def result_of(state: MaskedState) -> DecodeResult:
    return DecodeResult(state.tokens, state.nfe, state.wall_s, state.commit_step, 0, state)


def test_random_scan_gibbs_reaches_the_joint_from_a_wrong_start():
    batch = 40000
    state = MaskedState(torch.zeros(batch, 2, dtype=torch.long), JointDenoiser.mask_id)  # every row starts at (0, 0)
    generator = torch.Generator().manual_seed(0)
    correct(JointDenoiser(), result_of(state), Corrector(steps=40, positions=1), TokenChooser(1.0),
            generator=generator)
    counts = torch.bincount(state.tokens[:, 0] * 2 + state.tokens[:, 1], minlength=4).double() / batch
    assert torch.allclose(counts, JOINT.flatten(), atol=0.01), counts
    assert (state.nfe == 40).all()


def test_redrawing_everything_at_temperature_zero_gives_each_conditional_mode():
    tokens = torch.tensor([[1, 0], [0, 1]])
    state = MaskedState(tokens.clone(), JointDenoiser.mask_id)
    correct(JointDenoiser(), result_of(state), Corrector(steps=1, positions=2), TokenChooser(0.0))
    # both positions masked at once: each takes its marginal's mode (x0: 0 at 0.52; x1: 1 at 0.53), whatever it held
    assert state.tokens.tolist() == [[0, 1], [0, 1]]


def test_frozen_and_still_masked_positions_are_never_redrawn():
    model = MixingDenoiser(vocab=12, length=10)
    mask = model.mask_id
    tokens = torch.randint(0, mask, (64, 10), generator=torch.Generator().manual_seed(1))
    tokens[:, 7:] = mask  # e.g. reasoning slots left masked by an early exit
    frozen = torch.zeros(64, 10, dtype=torch.bool)
    frozen[:, :2] = True
    state = MaskedState(tokens.clone(), mask, frozen=frozen)
    result = correct(model, result_of(state), Corrector(steps=30, positions=3), TokenChooser(1.0),
                     generator=torch.Generator().manual_seed(2))
    assert torch.equal(result.tokens[:, :2], tokens[:, :2])
    assert (result.tokens[:, 7:] == mask).all()
    assert (result.tokens[:, 2:7] != tokens[:, 2:7]).any()
    assert (result.tokens[:, 2:7] != mask).all()
    assert model.calls == 30 and (result.nfe == 30).all()


def test_no_steps_changes_nothing_and_calls_nothing():
    model = MixingDenoiser(vocab=12, length=8)
    state = MaskedState.blank(4, 8, model.mask_id)
    result = decode(model, state, BUILTIN_RULES["confidence"](), chooser=TokenChooser(1.0),
                    generator=torch.Generator().manual_seed(0))
    before, calls = result.tokens.clone(), model.calls
    correct(model, result, Corrector(), TokenChooser(1.0))
    assert torch.equal(result.tokens, before) and model.calls == calls and (result.nfe == 8).all()


def test_bad_settings_and_uniform_models_are_one_line_errors():
    with pytest.raises(ConfigError, match="correct_steps"):
        Corrector(steps=-1)
    with pytest.raises(ConfigError, match="correct_positions"):
        Corrector(steps=1, positions=0)
    with pytest.raises(ConfigError, match="correct_pick='doubt'.*random, confidence"):
        Corrector(steps=1, pick="doubt")
    state = MaskedState(torch.zeros(2, 4, dtype=torch.long), -1, corruption="uniform")
    with pytest.raises(ConfigError, match="uniform corruption"):
        correct(MixingDenoiser(vocab=4, length=4), result_of(state), Corrector(steps=1), TokenChooser(1.0))


class SureExceptFirst:
    """Records which positions each call masks; certain of token 0 everywhere but at position 0, where tokens 0 and
    1 are equally likely."""

    mask_id, vocab_size = 3, 4

    def __init__(self):
        self.masked: list[torch.Tensor] = []

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        self.masked.append(tokens == self.mask_id)
        logits = torch.full((*tokens.shape, 4), -30.0)
        logits[..., 0] = 0.0
        logits[:, 0, 1] = 0.0
        return logits


def test_confidence_pick_sweeps_first_then_returns_to_the_doubtful_position():
    rows, length = 8, 10
    model = SureExceptFirst()
    state = MaskedState(torch.zeros(rows, length, dtype=torch.long), model.mask_id)
    correct(model, result_of(state), Corrector(steps=9 + 60, positions=2, pick="confidence"), TokenChooser(1.0),
            generator=torch.Generator().manual_seed(0))
    picks = torch.stack(model.masked)  # [steps, rows, length]
    assert (picks.sum(-1) == 2).all()
    # unvisited positions weigh 1, redrawn sure ones ~1e-6, the flat position 0 0.5: the sure positions are swept
    # without repeats (at most 5 of 9 visited in the first 5 steps, all within 9), position 0 in between
    assert (picks[:5, :, 1:].sum(0) <= 1).all()
    assert (picks[:9, :, 1:].sum(0) >= 1).all()
    # afterwards position 0 is in nearly every step; a sure position only as the second pick
    later = picks[9:].float().mean(0)
    assert (later[:, 0] > 0.95).all(), later[:, 0]
    assert torch.equal(state.tokens[:, 1:], torch.zeros(rows, length - 1, dtype=torch.long))


def test_random_pick_spreads_redraws_evenly():
    rows, length = 4000, 10
    model = SureExceptFirst()
    state = MaskedState(torch.zeros(rows, length, dtype=torch.long), model.mask_id)
    correct(model, result_of(state), Corrector(steps=20, positions=2), TokenChooser(1.0),
            generator=torch.Generator().manual_seed(0))
    share = torch.stack(model.masked).float().mean((0, 1))
    assert torch.allclose(share, torch.full((length,), 0.2), atol=0.01), share
