"""correct(): corrector steps after the canvas is full (ReMDM's loop phase with random remasking).

A masked diffusion sampler commits a token once and never revisits it, so an early choice that the rest of the
canvas contradicts stays (a SMILES ring bond without its partner, a parenthesis never closed, an aromatic ring of
the wrong size). Lowering the temperature hides such errors by shrinking the distribution, which costs diversity
and distribution match. A corrector keeps the temperature: each step re-masks ``positions`` committed,
non-frozen positions per row, drawn uniformly at random, and redraws them from the model given everything else
(a blocked Gibbs sweep over the model's conditionals, as ReMDM's loop phase with random remasking, Wang et al.
2025). A token that contradicts its now-visible context is unlikely under those conditionals, so redrawing tends to
repair it. Each step is one denoiser call over the whole canvas and counts as one NFE per row.

Which positions a step picks (``pick``):

* ``random``: uniformly among the eligible ones (ReMDM's random remasking);
* ``confidence``: a draw without replacement weighted by ``1 - p``, where ``p`` is the probability the model gave a
  position's current token when it was last drawn, and positions not yet redrawn weigh 1. The first steps therefore
  sweep the canvas, and later ones return to the tokens the model was least sure of, instead of spending most
  redraws on near-certain ones (in the spirit of ReMDM's confidence-based remasking; the weights come from the
  corrector's own draws because a masked diffusion model gives no distribution at a committed position). It stays
  a draw, not a top-k, so a position whose conditional is flat (several tokens fit) cannot capture every step.

Positions still masked when decoding ended (reasoning slots of a row that exited early) and frozen positions
(prompt, template) are never picked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from mdsample.core.choices import CORRECT_PICKS
from mdsample.core.denoiser import Denoiser
from mdsample.core.loop import DecodeResult
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError


@dataclass(frozen=True)
class Corrector:
    """``steps`` corrector steps (0: none), each re-masking ``positions`` committed positions per row, picked by
    ``pick`` (random or confidence)."""

    steps: int = 0
    positions: int = 2
    pick: str = "random"

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"decode.correct_steps must be >= 0 (0 turns the corrector off), got {self.steps}")
        if self.positions < 1:
            raise ConfigError(f"decode.correct_positions must be >= 1, got {self.positions}")
        if self.pick not in CORRECT_PICKS:
            raise ConfigError(f"decode.correct_pick={self.pick!r} is unknown; "
                              f"choose one of: {', '.join(CORRECT_PICKS)}")


@torch.no_grad()
def correct(denoiser: Denoiser, result: DecodeResult, corrector: Corrector, chooser: TokenChooser,
            conditioning: dict[str, torch.Tensor] | None = None,
            generator: torch.Generator | None = None) -> DecodeResult:
    """Run ``corrector.steps`` remask-and-redraw steps on ``result``'s canvases (in place); returns ``result``."""
    state = result.state
    if corrector.steps == 0:
        return result
    if state.uniform:
        raise ConfigError("the corrector re-masks committed tokens, but this model uses uniform corruption (no mask "
                          "token): set decode.correct_steps=0")
    if hasattr(denoiser, "open") and hasattr(denoiser, "canvas_length"):
        raise ConfigError("the corrector redraws positions of one whole canvas; a block-diffusion model decodes canvas "
                          "by canvas: set decode.correct_steps=0")
    start = time.perf_counter()
    conditioning = conditioning or {}
    eligible = ~state.frozen & (state.tokens != state.mask_id)
    k = min(corrector.positions, state.length)
    doubt = torch.ones(state.tokens.shape, device=state.tokens.device)  # 1 - p(current token); 1 until redrawn
    for _ in range(corrector.steps):
        uniform = torch.rand(state.tokens.shape, generator=generator, device=state.tokens.device)
        if corrector.pick == "random":
            scores = uniform
        else:  # Gumbel top-k: k draws without replacement, weights proportional to doubt
            scores = doubt.clamp_min(1e-6).log() - torch.log(-torch.log(uniform.clamp_min(1e-20)))
        index = scores.masked_fill(~eligible, float("-inf")).topk(k, dim=1).indices  # [B, k]
        picked = torch.zeros_like(eligible).scatter_(1, index, True) & eligible
        logits = denoiser(state.tokens.masked_fill(picked, state.mask_id), **conditioning)
        drawn = chooser(logits, generator)
        state.tokens = torch.where(picked, drawn, state.tokens)
        if corrector.pick == "confidence":  # the k picked positions' distributions only, not the whole canvas's
            at = logits.gather(1, index.unsqueeze(-1).expand(-1, -1, logits.shape[-1])).float().softmax(dim=-1)
            p = at.gather(-1, drawn.gather(1, index).unsqueeze(-1)).squeeze(-1)
            doubt = doubt.scatter(1, index, 1.0 - p)  # a non-eligible index is never picked, so its doubt is moot
    rows = eligible.any(dim=1)
    state.nfe += rows.long() * corrector.steps
    state.wall_s += rows.cpu().double() * (time.perf_counter() - start)
    result.tokens = state.tokens
    result.nfe = state.nfe
    result.wall_s = state.wall_s
    return result
