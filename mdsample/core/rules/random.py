"""Random order (MDLM ancestral sampling / LLaDA random remasking): k uniformly random masked positions."""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.core.stats import StepStats


class Random(Rule):
    """k uniformly random masked positions per step, k from the block's linear schedule."""

    name = "random"
    device_only = True
    fixed_count = True

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        scores = torch.rand(ctx.active.shape, generator=ctx.generator, device=ctx.active.device)
        return top_k_mask(scores, ctx.active, ctx.k, ctx.k_max)
