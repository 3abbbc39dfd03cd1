"""refine(): DiffusionGemma's accept-and-renoise sampler, with any rule choosing what to accept.

transformers' ``DiffusionGemmaForBlockDiffusion.generate`` does not commit positions once and for all. At every step
of a canvas it:

1. runs the decoder on the whole canvas, self-conditioned on the previous step's (temperature-scaled) logits;
2. scales the logits by a temperature that falls linearly from ``t_max`` (first step) towards ``t_min``;
3. draws a token for every position (multinomial, one call over all positions);
4. lets the sampler accept a set of positions, which take their drawn tokens; every other position is renoised
   with a uniformly drawn token (one randint over the canvas);
5. stops a row once its argmax canvas has not changed for ``stability`` steps and the mean entropy of its scaled
   logits is below ``confidence``; the row keeps its canvas from then on;

and returns the argmax of the last scaled logits. Acceptance is decided afresh at every step: a position accepted
now may be renoised at the next step. Here the rule makes that decision, over every non-frozen position (the active
set is the whole canvas): ``eb`` is transformers' entropy-bound sampler, KLASS, MED and the rest slot in unchanged.
Rules that take a count get the cumulative linear count ``ceil((s + 1) * n / steps)``, since nothing accepted
earlier is kept. The random draws are made in transformers' order and shapes (canvas, then per step multinomial and
renoise), so with the same seed and batch the tokens are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mdsample.core.denoiser import Denoiser
from mdsample.core.kl_history import KLHistory
from mdsample.core.loop import DecodeResult
from mdsample.core.rules.base import Rule, StepContext, ensure_progress
from mdsample.core.state import MaskedState, noise
from mdsample.core.stats import StepStats
from mdsample.errors import ConfigError


@dataclass(frozen=True)
class Reselect:
    """Settings of the accept-and-renoise sampler (transformers' DiffusionGemma generation-config names and
    defaults). ``confidence`` None turns the adaptive stop off (every canvas runs all its steps)."""

    t_max: float = 0.8
    t_min: float = 0.4
    stability: int = 1
    confidence: float | None = 0.005

    def __post_init__(self) -> None:
        if not 0 < self.t_min <= self.t_max:
            raise ConfigError(f"need 0 < t_min <= t_max for the temperature schedule, got {self.t_min}, {self.t_max}")
        if self.stability < 0:
            raise ConfigError(f"stability must be >= 0 steps, got {self.stability}")


def _entropy(logits: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """H in nats from normalised log-probabilities (finite for tokens of probability 0)."""
    logp = logits - logits.logsumexp(dim=-1, keepdim=True)
    return -(logp.clamp_min(torch.finfo(logp.dtype).min) * probs).sum(dim=-1)


@torch.no_grad()
def refine(
    denoiser: Denoiser,
    state: MaskedState,
    rule: Rule,
    *,
    steps: int,
    settings: Reselect | None = None,
    conditioning: dict[str, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> DecodeResult:
    """Run the accept-and-renoise sampler on a uniform canvas ``state`` (in place) for at most ``steps`` steps.

    The canvas's final tokens are the argmax of the last step's scaled logits (frozen positions keep theirs).
    A self-conditioned denoiser gets the previous step's scaled logits as ``self_conditioning``.
    """
    if not state.uniform:
        raise ConfigError("the accept-and-renoise sampler runs on uniform-corruption canvases (noise, no mask token)")
    if steps < 1:
        raise ConfigError(f"decode.steps must be >= 1, got {steps}")
    settings = settings or Reselect()
    conditioning = dict(conditioning or {})
    self_conditioning = bool(getattr(denoiser, "self_conditioning", False))
    batch, length = state.tokens.shape
    device = state.tokens.device
    free = ~state.frozen
    n_free = free.sum(dim=1)
    tokens = state.tokens
    argmax = tokens.clone()
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    seen = torch.full((max(settings.stability, 1), batch, length), -1, dtype=torch.long, device=device)
    previous: torch.Tensor | None = None
    history: KLHistory | None = None
    taken = 0
    for step in range(steps):
        taken = step + 1
        state.nfe += (~done).long()
        cond = conditioning if previous is None or not self_conditioning else {**conditioning,
                                                                               "self_conditioning": previous}
        raw = denoiser(tokens, **cond)
        remaining = torch.tensor(steps - step, dtype=torch.int32, device=device)
        temperature = settings.t_min + (settings.t_max - settings.t_min) * (remaining / steps)
        scaled = raw / temperature
        probs = torch.softmax(scaled, dim=-1, dtype=torch.float32)
        vocab = probs.shape[-1]
        drawn = torch.multinomial(probs.view(-1, vocab), num_samples=1, generator=generator).view(batch, length)
        new_argmax = torch.where(state.frozen, tokens, scaled.argmax(dim=-1))

        stats = StepStats(scaled, drawn, torch.float32, "drawn")
        vars(stats).update(probs=probs, entropy=_entropy(scaled.float(), probs))
        kl_history = None
        if rule.history:
            history = history or KLHistory(batch, length, vocab, rule.history, device, torch.float32)
            kl_history = history.update(torch.arange(batch, device=device), stats.probs)
        k = torch.minimum(((step + 1) * n_free + steps - 1) // steps, n_free).clamp_min(1)
        ctx = StepContext(free, k, torch.full_like(k, step), steps, length, kl_history, generator)
        accepted = ensure_progress(rule.select(stats, ctx) & free, stats.conf, free) | state.frozen
        renoised = torch.where(accepted, torch.where(state.frozen, tokens, drawn),
                               noise((batch, length), vocab, device, generator))

        if settings.confidence is not None:
            held = done.view(-1, 1)
            new_argmax = torch.where(held, argmax, new_argmax)
            renoised = torch.where(held, tokens, renoised)
            scaled = scaled if previous is None else torch.where(held.unsqueeze(-1), previous, scaled)
            stable = (seen == new_argmax.unsqueeze(0)).all(dim=-1).all(dim=0)
            if not settings.stability:
                stable = torch.ones_like(done)
            seen = seen.roll(-1, dims=0)
            seen[-1] = new_argmax
            probs_now = torch.softmax(scaled.float(), dim=-1)
            confident = _entropy(scaled.float(), probs_now).mean(dim=-1) < settings.confidence
            done = done | (stable & confident)
        previous = scaled
        tokens, argmax = renoised, new_argmax
        if bool(done.all()):
            break

    state.tokens.copy_(argmax)
    state.uncommitted.zero_()
    state.commit_step.masked_fill_(free, taken - 1)
    state.finished = torch.ones(batch, dtype=torch.bool, device=device)
    return DecodeResult(state.tokens, state.nfe, state.wall_s, state.commit_step, taken, state)
