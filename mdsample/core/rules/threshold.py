"""Confidence threshold (Fast-dLLM's parallel decoding): commit every masked position with conf > tau.

When no position passes, the single most confident one is committed so the row always progresses. With
``floor="schedule"`` a step that passes fewer than the schedule's k positions commits the k most confident instead
(diffusers' BlockRefinementScheduler, as LLaDA2 runs it).
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, ensure_progress, top_k_mask
from mdsample.core.rules.configs import ThresholdConfig
from mdsample.core.stats import StepStats


class Threshold(Rule):
    """Every masked position with confidence > threshold, at least the most confident one (Fast-dLLM)."""

    name = "threshold"
    device_only = True
    Config = ThresholdConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        chosen = ctx.active & (stats.conf > self.config.threshold)
        if self.config.floor == "schedule":
            short = (chosen.sum(dim=-1) < ctx.k).unsqueeze(-1)
            return torch.where(short, top_k_mask(stats.conf, ctx.active, ctx.k, ctx.k_max), chosen)
        return ensure_progress(chosen, stats.conf, ctx.active)
