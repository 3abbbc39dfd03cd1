"""The MDLM objective: masking statistics, the frozen prefix, and the exact loss weighting."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mdsample.models.mdlm import mask_tokens, mdlm_loss, mdlm_objective, sample_times, schedule_terms


def test_sample_times_are_stratified_in_range():
    gen = torch.Generator().manual_seed(0)
    t = sample_times(64, eps=0.01, generator=gen)
    assert t.shape == (64,)
    assert (t >= 0.01).all() and (t < 1).all()
    # low discrepancy: exactly one time per stratum of width (1 - eps) / B
    strata = ((t - 0.01) / 0.99 * 64).floor().long()
    assert sorted(strata.tolist()) == list(range(64))


@pytest.mark.parametrize("t_value", [0.1, 0.5, 0.9])
def test_masking_rate_matches_t_and_spares_frozen_prefix(t_value):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randint(0, 10, (200, 50), generator=gen)
    t = torch.full((200,), t_value)
    xt, masked = mask_tokens(x0, t, mask_id=11, frozen_prefix=3, generator=gen)
    assert not masked[:, :3].any()
    assert torch.equal(xt[:, :3], x0[:, :3])
    assert torch.equal(xt == 11, masked)
    assert torch.equal(xt[~masked], x0[~masked])
    n = masked[:, 3:].numel()
    rate = masked[:, 3:].float().mean().item()
    assert abs(rate - t_value) < 5 * math.sqrt(t_value * (1 - t_value) / n)


def test_masking_rate_varies_per_row():
    gen = torch.Generator().manual_seed(2)
    x0 = torch.zeros(2, 4000, dtype=torch.long)
    _, masked = mask_tokens(x0, torch.tensor([0.2, 0.8]), mask_id=5, generator=gen)
    rates = masked.float().mean(1)
    assert abs(rates[0] - 0.2) < 0.04 and abs(rates[1] - 0.8) < 0.04


def test_loss_matches_hand_computation():
    # two rows of length 3, prefix of 1 frozen; vocab 4 with mask id 3
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4)
    x0 = torch.tensor([[0, 1, 2], [0, 2, 1]])
    masked = torch.tensor([[False, True, True], [False, False, True]])
    t = torch.tensor([0.5, 0.25])

    def ce(i, j):  # cross-entropy with the mask token (id 3) removed from the softmax
        return -F.log_softmax(logits[i, j, :3], -1)[x0[i, j]].item()

    expected = (ce(0, 1) / 0.5 + ce(0, 2) / 0.5 + ce(1, 2) / 0.25) / (2 * 2)
    expected_ce = (ce(0, 1) + ce(0, 2) + ce(1, 2)) / 3
    out = mdlm_loss(logits, x0, masked, t, mask_id=3, frozen_prefix=1)
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.masked_ce.item() == pytest.approx(expected_ce, rel=1e-6)


def test_no_masks_gives_zero_loss_and_gradients_flow():
    logits = torch.randn(2, 5, 7, requires_grad=True)
    x0 = torch.randint(0, 6, (2, 5))
    none = torch.zeros(2, 5, dtype=torch.bool)
    out = mdlm_loss(logits, x0, none, torch.tensor([0.3, 0.6]), mask_id=6)
    assert out.loss.item() == 0.0 and out.masked_ce.item() == 0.0
    out = mdlm_loss(logits, x0, ~none, torch.tensor([0.3, 0.6]), mask_id=6)
    out.loss.backward()
    assert logits.grad is not None and logits.grad[..., 6].abs().sum() == 0


def test_objective_is_reproducible_with_a_generator():
    x0 = torch.randint(0, 8, (16, 12))
    model = torch.nn.Sequential(torch.nn.Embedding(10, 10))
    a = mdlm_objective(model, x0, 9, generator=torch.Generator().manual_seed(3))
    b = mdlm_objective(model, x0, 9, generator=torch.Generator().manual_seed(3))
    assert a.loss.item() == b.loss.item()
    assert math.isfinite(a.loss.item())


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_every_noise_schedule_estimates_the_same_bound(schedule):
    """A denoiser that predicts the uniform distribution over the V - 1 non-mask tokens has NELBO log(V - 1) per
    maskable token whatever the schedule (E_t[rate * weight] = 1): both estimators must land there."""
    vocab, mask_id = 9, 8
    x0 = torch.randint(0, mask_id, (4096, 24), generator=torch.Generator().manual_seed(5))

    def uniform(xt):
        return torch.zeros(*xt.shape, vocab)

    losses = [mdlm_objective(uniform, x0, mask_id, generator=torch.Generator().manual_seed(s), schedule=schedule).loss
              for s in range(4)]
    assert sum(losses).item() / 4 == pytest.approx(math.log(vocab - 1), rel=0.01)


def test_cosine_schedule_terms_are_its_masking_rate_and_nelbo_weight():
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    rate, weight = schedule_terms(t, "cosine")
    alpha = torch.cos(math.pi * t / 2)
    assert torch.allclose(rate, 1 - alpha)
    assert torch.allclose(weight, (math.pi / 2) * torch.sin(math.pi * t / 2) / (1 - alpha))
    rate, weight = schedule_terms(t, "linear")
    assert torch.equal(rate, t) and torch.allclose(weight, 1 / t)
    with pytest.raises(ValueError, match="noise schedule"):
        schedule_terms(t, "sqrt")
