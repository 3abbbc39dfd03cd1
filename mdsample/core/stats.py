"""StepStats: the per-step statistics every rule reads, computed once and only when first asked for.

The loop gathers the logits of the active window (the masked positions' block, plus the next block for rules
with history outside the dual cache, core/loop.py) and wraps them here. Each statistic is a cached property, so a
rule that only needs confidence never pays for entropy or top-2 margins, and two statistics share the softmax.
Everything is in ``dtype`` (fp32 by default, fp64 for parity runs); no full-canvas or fp64 copies are made.
"""

from __future__ import annotations

from functools import cached_property

import torch

from mdsample.core.top_two import top_two_margin

KL_EPS = 1e-12
"""The epsilon inside KLASS's logs, as in the reference: KL = sum p (log(p + eps) - log(p_prev + eps))."""


class StepStats:
    """Statistics of ``logits[b, W, V]`` for the window positions, given the chosen tokens ``x0[b, W]``."""

    def __init__(
        self, logits: torch.Tensor, x0: torch.Tensor, dtype: torch.dtype = torch.float32, confidence: str = "drawn"
    ):
        self.logits = logits
        self.x0 = x0
        self.dtype = dtype
        self.confidence = confidence

    @cached_property
    def probs(self) -> torch.Tensor:
        """p_t(i) over the vocabulary, [b, W, V]."""
        return torch.softmax(self.logits.to(self.dtype), dim=-1)

    @cached_property
    def log_probs(self) -> torch.Tensor:
        return torch.log_softmax(self.logits.to(self.dtype), dim=-1)

    @cached_property
    def conf(self) -> torch.Tensor:
        """conf(i) = p_t(i)[x0(i)] ("drawn") or max_v p_t(i)[v] ("mode"), [b, W]."""
        if self.confidence == "mode":
            return self.probs.max(dim=-1).values
        return self.probs.gather(-1, self.x0.unsqueeze(-1)).squeeze(-1)

    @cached_property
    def entropy(self) -> torch.Tensor:
        """H_t(i) in nats, [b, W]; entr() counts forbidden tokens (p = 0, log p = -inf) as 0, not NaN."""
        return torch.special.entr(self.probs).sum(dim=-1)

    @cached_property
    def margin(self) -> torch.Tensor:
        """top1 - top2 probability, [b, W] (one pass on CUDA, core/top_two.py)."""
        return top_two_margin(self.probs)

    @cached_property
    def log_probs_eps(self) -> torch.Tensor:
        """log(p + eps): what KLASS keeps as the previous distribution of a position."""
        return torch.log(self.probs + KL_EPS)
