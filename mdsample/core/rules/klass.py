"""KLASS — KL-Adaptive Stability Sampling (Kim et al., NeurIPS 2025).

A masked position is *ready* when each of its last H KL values KL(p_t || p_{t-1}) is below ``kl_threshold`` and
its confidence exceeds ``conf_threshold`` (strict inequalities; stability is only checked from block step H-1 on,
so it reads KL values from inside the block). Rows with ready positions commit them ("all") or the single best
("max_conf", "min_kl", "random"); rows without fall back to the block's linear schedule by confidence. The loop
keeps the previous distribution and the KL history for the active and next block only (ALGORITHMS.md); under the
dual cache for the active block only, the next block's coming from one extra cached call when a row's block advances.
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.core.rules.configs import KLASSConfig
from mdsample.core.stats import StepStats


class KLASS(Rule):
    """Commit positions whose last H KLs are < kl_threshold and confidence > conf_threshold, else top-k by conf."""

    name = "klass"
    device_only = True
    Config = KLASSConfig

    @property
    def history(self) -> int:
        return self.config.history

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        cfg = self.config
        stable = (ctx.kl_history < cfg.kl_threshold).all(dim=-1)
        checked = (ctx.step_in_block >= cfg.history - 1).unsqueeze(-1)
        ready = stable & checked & (stats.conf > cfg.conf_threshold) & ctx.active
        if cfg.unmask_strategy != "all":
            ready = self._single(ready, stats, ctx)
        has_ready = ready.any(dim=-1, keepdim=True)
        fallback = top_k_mask(stats.conf, ctx.active, ctx.k, ctx.k_max)
        return torch.where(has_ready, ready, fallback)

    def _single(self, ready: torch.Tensor, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        one = torch.ones(ready.shape[0], dtype=torch.long, device=ready.device)
        if self.config.unmask_strategy == "max_conf":
            scores = stats.conf
        elif self.config.unmask_strategy == "min_kl":
            scores = -ctx.kl_history[..., -1]
        else:
            scores = torch.rand(ready.shape, generator=ctx.generator, device=ready.device)
        return top_k_mask(scores, ready, one, 1)
