"""KLASS's memory for the decode window (core/loop.py, steps 1 and 4): each position's log(p + eps) of the previous
step and its last H KL values, updated in one pass over the window's distributions.

Why one pass: the update reads p_t and the stored log(p_{t-1} + eps) of the step's rows, pushes KL(p_t || p_{t-1})
per position onto the history and stores log(p_t + eps) back. As torch ops that is about ten passes over
[rows, window, vocabulary] float32 tensors plus five small ops for the push; with LLaDA's 126k-token vocabulary it
was ~1 ms of a 12 ms batch-8 step on an H200, most of KLASS's cost over the plain loop (benchmarks/rule_step.py). On
CUDA, in float32, Triton (core/kl_triton.py) reads p and the previous distributions once, writes the new ones once
and pushes the KL, in two launches; elsewhere, and as the tests' oracle, the torch reference runs (float64 parity
runs included). The two agree to float32 rounding: the kernels sum in another order.

Why the reset is lazy: when a row's block advances under a one-block window, its stored distributions start afresh
(log(eps), an empty history). Written eagerly, that reset is a pass over the whole [batch, window, vocabulary] store
at every step (the advance is decided on the device, so the loop cannot skip the steps without one): 0.1 ms of a
batch-8 step. Instead ``shift`` marks the rows *stale*, and the next update reads a stale row's previous
distribution as log(eps) and its history as zeros without touching the store; a peek (core/loop.py, ``_peek``)
``fill``s the previous distribution and clears that mark.
"""

from __future__ import annotations

import torch

from mdsample.core.stats import KL_EPS
from mdsample.core.triton_check import triton_available


class KLHistory:
    """``prev[B, W, V]``: log(p + eps) of the previous step; ``kl[B, W, H]``: the last H KL values, newest last;
    ``stale_prev`` / ``stale_kl[B]``: rows whose ``prev`` reads as log(eps) and whose ``kl`` reads as zeros."""

    def __init__(self, batch: int, window: int, vocab: int, length: int, device: torch.device, dtype: torch.dtype,
                 eps: float = KL_EPS):
        self.eps = eps
        self.log_eps = torch.log(torch.tensor(eps, dtype=dtype)).item()
        self.prev = torch.full((batch, window, vocab), self.log_eps, dtype=dtype, device=device)
        self.kl = torch.zeros(batch, window, length, dtype=dtype, device=device)
        self.stale_prev = torch.zeros(batch, dtype=torch.bool, device=device)
        self.stale_kl = torch.zeros(batch, dtype=torch.bool, device=device)

    def update(self, rows: torch.Tensor, probs: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
        """Record this step's distributions ``probs[n, W, V]`` of state rows ``rows[n]`` (only the ``live`` ones
        when given): push KL(p || prev) onto their history, store log(p + eps). Returns the rows' history
        ``[n, W, H]``."""
        if uses_kernel(probs, self):
            from mdsample.core import kl_triton

            return kl_triton.kl_update(probs, self, rows, live)
        return kl_update_reference(probs, self, rows, live)

    def fill(self, rows: torch.Tensor, log_probs_eps: torch.Tensor) -> None:
        """Set the previous distributions of ``rows`` (a peek's), which are then no longer stale."""
        self.prev[rows] = log_probs_eps
        self.stale_prev[rows] = False

    def shift(self, moved: torch.Tensor, block: int) -> None:
        """Rows whose block advanced by one inherit the next-block half; whatever else moved starts afresh.

        The fresh values are never read by a stability check: a block's first check (step H-1) only reads KL
        values computed inside it, the first against the step before the block began. With a one-block window the
        rows that moved become stale (the module's docstring says why); with a two-block window the halves move with
        torch.where (no host sync), a copy of the window's distributions per step.
        """
        window = self.prev.shape[1]
        if window == block:
            advanced = moved > 0
            self.stale_prev |= advanced
            self.stale_kl |= advanced
            return
        cols = torch.arange(window, device=moved.device)
        inherited = cols < block
        one = (moved == 1).view(-1, 1) & inherited
        self.prev = torch.where(one.unsqueeze(-1), self.prev.roll(-block, dims=1), self.prev)
        self.kl = torch.where(one.unsqueeze(-1), self.kl.roll(-block, dims=1), self.kl)
        fresh = ((moved > 0).view(-1, 1) & ~inherited) | ((moved > 1).view(-1, 1) & inherited)
        self.prev.masked_fill_(fresh.unsqueeze(-1), self.log_eps)
        self.kl.masked_fill_(fresh.unsqueeze(-1), 0.0)


def uses_kernel(probs: torch.Tensor, history: KLHistory) -> bool:
    """Whether an update runs the Triton kernels: CUDA float32 tensors whose vocabulary is contiguous."""
    return (probs.is_cuda and probs.dtype == history.prev.dtype == torch.float32 and probs.stride(-1) == 1
            and history.prev.is_contiguous() and history.kl.is_contiguous() and not torch.compiler.is_compiling()
            and triton_available())


def kl_update_reference(probs: torch.Tensor, history: KLHistory, rows: torch.Tensor,
                        live: torch.Tensor | None) -> torch.Tensor:
    """KLHistory.update in torch ops."""
    stale_prev, stale_kl = history.stale_prev[rows].view(-1, 1, 1), history.stale_kl[rows].view(-1, 1, 1)
    before = torch.where(stale_prev, history.log_eps, history.prev[rows])
    kept = torch.where(stale_kl, 0.0, history.kl[rows])
    log_eps = torch.log(probs + history.eps)
    kl = (probs * (log_eps - before)).sum(dim=-1)
    pushed = torch.cat([kept[..., 1:], kl.unsqueeze(-1)], dim=-1)
    if live is None:
        history.stale_prev[rows] = False
        history.stale_kl[rows] = False
    else:
        log_eps = torch.where(live.view(-1, 1, 1), log_eps, before)
        pushed = torch.where(live.view(-1, 1, 1), pushed, kept)
        history.stale_prev[rows] &= ~live
        history.stale_kl[rows] &= ~live
    history.prev[rows] = log_eps
    history.kl[rows] = pushed
    return pushed
