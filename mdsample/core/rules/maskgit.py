"""MaskGIT (Chang et al. 2022): cosine schedule, Gumbel-noised log-confidence with an annealed choice temperature.

At block step s of S the noise scale is ``choice_temperature * (1 - (s + 1) / S)``: early steps explore, the last
ones commit by confidence alone. The count per step follows the cosine schedule (schedule.py).
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.core.rules.configs import MaskGITConfig
from mdsample.core.stats import StepStats


class MaskGIT(Rule):
    """Cosine schedule; top-k of log p(x0) + annealed Gumbel noise (MaskGIT's choice temperature)."""

    name = "maskgit"
    device_only = True
    fixed_count = True
    Config = MaskGITConfig
    schedule = "cosine"

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        uniform = torch.rand(ctx.active.shape, generator=ctx.generator, device=ctx.active.device)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        anneal = 1.0 - (ctx.step_in_block + 1).to(stats.dtype) / ctx.steps_per_block
        scale = (self.config.choice_temperature * anneal.clamp_min(0.0)).unsqueeze(-1)
        scores = torch.log(stats.conf.clamp_min(1e-30)) + scale * gumbel.to(stats.dtype)
        return top_k_mask(scores, ctx.active, ctx.k, ctx.k_max)
