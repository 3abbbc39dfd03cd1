"""Entropy top-k: commit the k masked positions with the lowest predictive entropy."""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.core.stats import StepStats


class Entropy(Rule):
    """Top-k by lowest entropy, k from the block's linear schedule."""

    name = "entropy"
    device_only = True
    fixed_count = True

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(-stats.entropy, ctx.active, ctx.k, ctx.k_max)
