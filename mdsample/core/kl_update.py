"""KLASS's per-step history update (decode's step 4) as one pass over the window's distributions.

Why: the update reads p_t, the stored log(p_{t-1} + eps) of the step's rows, pushes KL(p_t || p_{t-1}) per
position onto the KL history and stores log(p_t + eps) back. Written as torch ops it is about ten passes over
[rows, window, vocabulary] float32 tensors (gathering the rows' previous distributions, the log, the difference, the
product, the sum, scattering back), and the history's push five more small ones; with LLaDA's 126k-token vocabulary
that was ~1 ms of a 12 ms batch-8 step on an H200, most of KLASS's cost over the plain loop
(benchmarks/rule_step.py). On CUDA, in float32, Triton (core/kl_triton.py) reads p and the previous distributions
once, writes the new ones once and pushes the KL, in two launches; elsewhere, and as the tests' oracle, the torch
reference runs (float64 parity runs included). The two agree to float32 rounding: the kernels sum in another order.
"""

from __future__ import annotations

import torch

from mdsample.core.triton_check import triton_available


def uses_kernel(probs: torch.Tensor, prev: torch.Tensor, history: torch.Tensor) -> bool:
    """Whether ``kl_update`` runs the Triton kernel: CUDA float32 tensors whose vocabulary is contiguous."""
    return (probs.is_cuda and probs.dtype == prev.dtype == history.dtype == torch.float32 and probs.stride(-1) == 1
            and prev.is_contiguous() and history.is_contiguous() and not torch.compiler.is_compiling()
            and triton_available())


def kl_update_reference(probs: torch.Tensor, prev: torch.Tensor, history: torch.Tensor, rows: torch.Tensor,
                        live: torch.Tensor | None, eps: float) -> torch.Tensor:
    """Push KL(p || prev[rows]) per position onto ``history[rows]`` (dropping its oldest value) and store log(p + eps)
    into ``prev[rows]``, in the ``live`` rows only when given; returns ``history[rows]`` after the update."""
    before, kept = prev[rows], history[rows]
    log_eps = torch.log(probs + eps)
    kl = (probs * (log_eps - before)).sum(dim=-1)
    pushed = torch.cat([kept[..., 1:], kl.unsqueeze(-1)], dim=-1)
    if live is not None:
        log_eps = torch.where(live.view(-1, 1, 1), log_eps, before)
        pushed = torch.where(live.view(-1, 1, 1), pushed, kept)
    prev[rows] = log_eps
    history[rows] = pushed
    return pushed


def kl_update(probs: torch.Tensor, prev: torch.Tensor, history: torch.Tensor, rows: torch.Tensor,
              live: torch.Tensor | None, eps: float) -> torch.Tensor:
    """``probs[n, W, V]``: this step's distributions of state rows ``rows[n]`` (device); ``prev[B, W, V]``: every
    row's stored log(p + eps) and ``history[B, W, H]`` its last H KL values, both updated in place. Returns the rows'
    history ``[n, W, H]``, the newest KL last."""
    if uses_kernel(probs, prev, history):
        from mdsample.core import kl_triton

        return kl_triton.kl_update(probs, prev, history, rows, live, eps)
    return kl_update_reference(probs, prev, history, rows, live, eps)
