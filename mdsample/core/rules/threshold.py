"""Confidence threshold (Fast-dLLM's parallel decoding): commit every masked position with conf > tau.

When no position passes, the single most confident one is committed so the row always progresses.
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, ensure_progress
from mdsample.core.rules.configs import ThresholdConfig
from mdsample.core.stats import StepStats


class Threshold(Rule):
    """Every masked position with confidence > threshold, at least the most confident one (Fast-dLLM)."""

    name = "threshold"
    Config = ThresholdConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        chosen = ctx.active & (stats.conf > self.config.threshold)
        return ensure_progress(chosen, stats.conf, ctx.active)
