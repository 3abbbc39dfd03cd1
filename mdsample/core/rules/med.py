"""MED — multi-token entropy decoding (Horvitz et al. 2025).

KL(joint || product of marginals) of positions decoded together is at most the sum of their entropies, so
committing only positions with H(i) < lambda, at most k_max of them, bounds a step's error by lambda * k_max.
Positions are taken lowest entropy first; when none passes, the single lowest-entropy position is committed.
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, ensure_progress, top_k_mask
from mdsample.core.rules.configs import MEDConfig
from mdsample.core.stats import StepStats


class MED(Rule):
    """Positions with entropy < lambda, lowest first, at most k_max; else the single lowest-entropy one."""

    name = "med"
    device_only = True
    Config = MEDConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        scores = -stats.entropy
        passing = ctx.active & (stats.entropy < self.config.entropy_threshold)
        cap = torch.full_like(ctx.k, self.config.k_max)
        chosen = top_k_mask(scores, passing, cap, self.config.k_max)
        return ensure_progress(chosen, scores, ctx.active)
