"""AR-MED — the left-to-right variant of MED (Horvitz et al. 2025).

Scan the masked positions from the leftmost one rightwards and commit the run that has H(i) < lambda, stopping
at the first masked position that fails, at most k_max; when the leftmost masked position fails, commit it alone.
Already-committed positions inside the run do not break it: the run is over masked positions in order.
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext
from mdsample.core.rules.configs import ARMEDConfig
from mdsample.core.stats import StepStats


class ARMED(Rule):
    """Leftmost contiguous run of masked positions with entropy < lambda (at most k_max); else the leftmost one."""

    name = "ar_med"
    device_only = True
    Config = ARMEDConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        failing = ctx.active & ~(stats.entropy < self.config.entropy_threshold)
        before_first_fail = failing.long().cumsum(dim=-1) == 0
        order = ctx.active.long().cumsum(dim=-1)
        run = ctx.active & before_first_fail & (order <= self.config.k_max)
        leftmost = ctx.active & (order == 1)
        stuck = ~run.any(dim=-1, keepdim=True)
        return run | (leftmost & stuck)
