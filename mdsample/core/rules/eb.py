"""Entropy-bounded (EB) selection, as used by transformers' DiffusionGemma.

Take masked positions lowest entropy first and keep the largest prefix whose entropies, minus the largest of
them, sum to at most gamma (equivalently: all but the last one sum to <= gamma); at least one position.
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext
from mdsample.core.rules.configs import EBConfig
from mdsample.core.stats import StepStats


class EntropyBounded(Rule):
    """Lowest-entropy prefix with sum(H) - max(H) <= gamma (optionally at most k_max), at least one position."""

    name = "eb"
    device_only = True
    Config = EBConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        entropy = stats.entropy.masked_fill(~ctx.active, float("inf"))
        sorted_h, order = entropy.sort(dim=-1)
        finite = torch.isfinite(sorted_h)
        before = torch.cumsum(torch.where(finite, sorted_h, torch.zeros_like(sorted_h)), dim=-1) - torch.where(
            finite, sorted_h, torch.zeros_like(sorted_h)
        )
        rank = torch.arange(sorted_h.shape[-1], device=sorted_h.device).unsqueeze(0)
        keep_sorted = finite & ((before <= self.config.gamma) | (rank == 0))
        if self.config.k_max > 0:
            keep_sorted &= rank < self.config.k_max
        return torch.zeros_like(ctx.active).scatter(-1, order, keep_sorted) & ctx.active
