"""KLASS's per-step history update (decode's step 4) as one pass over the window's distributions.

Why: the update reads p_t, the stored log(p_{t-1} + eps) of the step's rows, returns KL(p_t || p_{t-1}) per position
and stores log(p_t + eps) back. Written as torch ops it is about ten passes over [rows, window, vocabulary] float32
tensors (gathering the rows' previous distributions, the log, the difference, the product, the sum, scattering
back); with LLaDA's 126k-token vocabulary that was ~1 ms of a 12 ms batch-8 step on an H200, most of KLASS's cost
over the plain loop (benchmarks/rule_step.py). On CUDA, in float32, one Triton kernel (core/kl_triton.py) reads p and
the previous distributions once and writes the new ones once; elsewhere, and as the tests' oracle, the torch
reference runs (float64 parity runs included). The two agree to float32 rounding: the kernel sums in another order.
"""

from __future__ import annotations

import torch

from mdsample.core.triton_check import triton_available


def uses_kernel(probs: torch.Tensor, prev: torch.Tensor) -> bool:
    """Whether ``kl_update`` runs the Triton kernel: CUDA float32 tensors whose vocabulary is contiguous."""
    return (probs.is_cuda and probs.dtype == prev.dtype == torch.float32 and probs.stride(-1) == 1
            and prev.is_contiguous() and not torch.compiler.is_compiling() and triton_available())


def kl_update_reference(probs: torch.Tensor, prev: torch.Tensor, rows: torch.Tensor, live: torch.Tensor | None,
                        eps: float) -> torch.Tensor:
    """KL(p || prev[rows]) per position ``[n, W]``; ``prev[rows]`` becomes log(p + eps) (in the ``live`` rows only,
    when given)."""
    before = prev[rows]
    log_eps = torch.log(probs + eps)
    kl = (probs * (log_eps - before)).sum(dim=-1)
    prev[rows] = log_eps if live is None else torch.where(live.view(-1, 1, 1), log_eps, before)
    return kl


def kl_update(probs: torch.Tensor, prev: torch.Tensor, rows: torch.Tensor, live: torch.Tensor | None,
              eps: float) -> torch.Tensor:
    """``probs[n, W, V]``: this step's distributions of state rows ``rows[n]`` (device); ``prev[B, W, V]``: every
    row's stored log(p + eps), updated in place. Returns the KL values ``[n, W]``."""
    if uses_kernel(probs, prev):
        from mdsample.core import kl_triton

        return kl_triton.kl_update(probs, prev, rows, live, eps)
    return kl_update_reference(probs, prev, rows, live, eps)
