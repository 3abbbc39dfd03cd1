"""The ``spaced`` selection rule: commit the most confident positions that are not too close to each other.

Why: the denoiser proposes every position from its own marginal, but neighbouring positions are the most strongly
coupled (a motif is contiguous), so committing two adjacent positions in one step is where the product of marginals
differs most from the joint. ``spaced`` keeps each step's commits at least ``radius + 1`` positions apart: a
position is eligible only if it is the most confident masked position within ``radius`` on either side, and the
step commits the schedule's top-k among the eligible ones (fewer when fewer are eligible; the most confident
position is always eligible, so every row progresses). Ties go to the leftmost position, so the spacing is exact.

It ships with the DNA example to show that a plugin can add a rule, but nothing in it is DNA-specific.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdsample.core.rules import Rule, StepContext, top_k_mask
from mdsample.core.stats import StepStats
from mdsample_dna.options import SpacedConfig


class Spaced(Rule):
    """Top-k by confidence among masked positions that are the most confident within radius (2) on each side."""

    name = "spaced"
    Config = SpacedConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        conf = stats.conf.masked_fill(~ctx.active, float("-inf"))
        # Unique scores W-1 (most confident) .. 0, ties won by the earlier position; -1 for inactive positions.
        width = conf.shape[-1]
        order = conf.argsort(dim=-1, descending=True, stable=True)
        places = torch.arange(width, device=conf.device).expand_as(order)
        score = (width - 1 - torch.empty_like(order).scatter_(-1, order, places)).float()
        score = score.masked_fill(~ctx.active, -1.0)
        r = self.config.radius
        local_max = F.max_pool1d(score.unsqueeze(1), 2 * r + 1, stride=1, padding=r).squeeze(1)
        eligible = ctx.active & (score == local_max)
        return top_k_mask(score, eligible, ctx.k)
