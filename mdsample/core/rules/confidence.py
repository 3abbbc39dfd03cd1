"""Confidence top-k (LLaDA's low_confidence remasking): commit the k most confident masked positions."""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.core.stats import StepStats


class Confidence(Rule):
    """Top-k by confidence p(x0), k from the block's linear schedule (LLaDA low_confidence)."""

    name = "confidence"
    device_only = True
    fixed_count = True

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(stats.conf, ctx.active, ctx.k, ctx.k_max)
