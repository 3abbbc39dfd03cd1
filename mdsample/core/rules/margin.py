"""Margin top-k: commit the k positions whose top-1 and top-2 probabilities are furthest apart."""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.core.stats import StepStats


class Margin(Rule):
    """Top-k by margin p(top1) - p(top2), k from the block's linear schedule."""

    name = "margin"
    device_only = True
    fixed_count = True

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(stats.margin, ctx.active, ctx.k, ctx.k_max)
