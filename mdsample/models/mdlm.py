"""The MDLM training objective (Sahoo et al., 2024) for a bidirectional denoiser without time conditioning.

Forward process, linear schedule ``alpha_t = 1 - t``: at time ``t`` each maskable token is independently replaced
by the mask token with probability ``t``. With the SUBS parameterisation (the denoiser never predicts the mask
token, and unmasked tokens are copied through) the continuous-time NELBO of a sequence ``x`` is

    E_{t ~ U(0, 1)} [ (-alpha'_t / (1 - alpha_t)) * sum_{l masked in x_t} -log p_theta(x_l | x_t) ]

and for the linear schedule the weight ``-alpha'_t / (1 - alpha_t)`` is ``1 / t``. The denoiser gets no ``t``: the
number of masks in ``x_t`` already tells it how far along the process is, which is what lets samplers call it
with any canvas.

The bound is the same for every schedule (a change of variable from ``t`` to the masking rate ``1 - alpha_t``), but
its Monte-Carlo estimate is not: the schedule decides which masking rates the batches visit and how heavily each is
weighted, which is a training choice (``train.noise_schedule``). ``cosine`` (``alpha_t = cos(pi t / 2)``) spends
more of the batch at low masking rates, the end of sampling where a committed molecule's last tokens are chosen.

Everything here is a pure function of tensors (plus an optional ``torch.Generator``), so a trainer, a test or an
evaluation script can reuse it with any model that maps tokens to logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from mdsample.train_config import NOISE_SCHEDULES


def schedule_terms(t: torch.Tensor, schedule: str = "linear") -> tuple[torch.Tensor, torch.Tensor]:
    """``(rate, weight)`` at times ``t``: the masking probability ``1 - alpha_t`` and the NELBO weight
    ``-alpha'_t / (1 - alpha_t)`` of ``schedule`` (``E_t[rate * weight] = alpha_0 - alpha_1 = 1`` for every one)."""
    if schedule == "linear":
        return t, 1.0 / t
    if schedule == "cosine":
        rate = 1.0 - torch.cos(0.5 * math.pi * t)
        return rate, 0.5 * math.pi * torch.sin(0.5 * math.pi * t) / rate
    raise ValueError(f"unknown noise schedule {schedule!r}; one of {', '.join(NOISE_SCHEDULES)}")


class MdlmLoss(NamedTuple):
    """``loss``: the 1/t-weighted NELBO per maskable token (what to minimise); ``masked_ce``: the plain mean
    cross-entropy over the masked tokens (easier to read in logs, since it does not blow up at small ``t``)."""

    loss: torch.Tensor
    masked_ce: torch.Tensor


def sample_times(
    batch: int, *, eps: float = 1e-3, device: torch.device | str | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Low-discrepancy times ``t[B]`` in ``[eps, 1)``: one uniform offset, then ``B`` evenly spaced strata.

    Spreading the batch evenly over ``[0, 1)`` instead of drawing ``B`` independent uniforms keeps the estimator
    unbiased (each ``t_i`` is still marginally uniform) and cuts the variance of the 1/t-weighted loss, which is
    dominated by how many rows happen to land at small ``t``. ``eps`` keeps the weight 1/t bounded.
    """
    offset = torch.rand((), device=device, generator=generator)
    u = (offset + torch.arange(batch, device=device) / batch) % 1.0
    return eps + (1.0 - eps) * u


def mask_tokens(
    x0: torch.Tensor,
    t: torch.Tensor,
    mask_id: int,
    *,
    frozen_prefix: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``x_t``: mask each position ``>= frozen_prefix`` of row ``i`` independently with probability ``t[i]``.

    Returns ``(xt, masked)`` where ``masked[B, L]`` marks the positions replaced by ``mask_id``. Positions before
    ``frozen_prefix`` (e.g. BOS) are never masked because the sampler never masks them either. Padding is
    maskable on purpose: predicting where the padding starts is how a fixed-length model learns lengths.

    A clean row may hold ``mask_id`` itself: an *unobserved* position (say, a problem's reasoning when only its
    answer is known). It stays masked in ``x_t`` and carries no loss, so the model learns p(observed | context)
    with the unknown part marginalised, exactly the situation it meets when sampling.
    """
    u = torch.rand(x0.shape, device=x0.device, generator=generator)
    masked = (u < t[:, None]) & (x0 != mask_id)
    masked[:, :frozen_prefix] = False
    return x0.masked_fill(masked, mask_id), masked


def mdlm_loss(
    logits: torch.Tensor,
    x0: torch.Tensor,
    masked: torch.Tensor,
    t: torch.Tensor,
    *,
    mask_id: int,
    frozen_prefix: int = 0,
    weight: torch.Tensor | None = None,
) -> MdlmLoss:
    """The MDLM loss of ``logits[B, L, V]`` (the denoiser's output on ``x_t``) against the clean ``x0[B, L]``.

    ``loss = sum_{i, l : masked} CE(i, l) * w_i  /  (B * (L - frozen_prefix))``, ``w_i = 1 / t_i`` (the linear
    schedule) unless ``weight[B]`` gives another schedule's weights.

    Normalisation: the denominator is the number of *maskable* tokens in the batch, a constant. That makes the loss
    an unbiased Monte-Carlo estimate of the NELBO per generated token (nats/token, comparable across batch sizes and
    with validation runs). Dividing instead by the random number of masked tokens would give a ratio estimator that
    is biased and down-weights rows with many masks (large ``t``); frozen-prefix positions are left out of the
    denominator because they never carry loss.

    The mask token's logit is excluded from the softmax (SUBS "zero masking probability"), matching the sampler,
    which never commits a mask. Computed in float32 whatever the autocast dtype of ``logits``.
    """
    logits = logits.float()
    if mask_id < logits.shape[-1]:
        logits = logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), float("-inf"))
    target = x0.masked_fill(x0 == mask_id, 0)  # unobserved positions are never in ``masked``
    ce = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view_as(x0)
    ce = torch.where(masked, ce, torch.zeros_like(ce))
    n_tokens = x0.shape[0] * (x0.shape[1] - frozen_prefix)
    w = 1.0 / t if weight is None else weight
    loss = (ce * w[:, None]).sum() / n_tokens
    masked_ce = ce.sum() / masked.sum().clamp(min=1)
    return MdlmLoss(loss, masked_ce)


def mdlm_objective(
    model: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    mask_id: int,
    *,
    frozen_prefix: int = 0,
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
    schedule: str = "linear",
) -> MdlmLoss:
    """One Monte-Carlo draw of the objective on the clean batch ``x0``: sample ``t``, mask, denoise, score.

    ``model`` maps ``x_t[B, L]`` to ``logits[B, L, V]``; ``generator`` (on ``x0``'s device) makes the draw
    reproducible, e.g. for a validation loss that is comparable from one evaluation to the next. ``schedule``
    picks the noise schedule (``NOISE_SCHEDULES``).
    """
    t = sample_times(x0.shape[0], eps=eps, device=x0.device, generator=generator)
    rate, weight = schedule_terms(t, schedule)
    xt, masked = mask_tokens(x0, rate, mask_id, frozen_prefix=frozen_prefix, generator=generator)
    return mdlm_loss(model(xt), x0, masked, rate, mask_id=mask_id, frozen_prefix=frozen_prefix, weight=weight)
