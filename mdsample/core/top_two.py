"""The margin statistic's top-1 minus top-2 probability per position, in one pass over the vocabulary on CUDA.

Why: ``probs.topk(2)`` over LLaDA's 126k-token vocabulary is a multi-pass radix selection; at batch 8 on an H200 it made
the margin rule's step 1.04x the plain loop's, above the 3% any rule may add (benchmarks/rule_step.py). The margin
needs only the two largest values, which one streaming pass finds: on CUDA, in float32, a Triton kernel
(core/top_two_triton.py) does; elsewhere, and as the tests' oracle, ``topk`` runs. Both return the same two values
of the same tensor (ties included: two equal maxima give a margin of 0), so the margin is bit-identical and the rule
commits the same positions.
"""

from __future__ import annotations

import torch

from mdsample.core.triton_check import triton_available


def uses_kernel(probs: torch.Tensor) -> bool:
    """Whether ``top_two_margin`` runs the Triton kernel: a CUDA float32 tensor whose vocabulary is contiguous."""
    return (probs.is_cuda and probs.dtype == torch.float32 and probs.stride(-1) == 1 and probs.numel() > 0
            and not torch.compiler.is_compiling() and triton_available())


def top_two_margin_reference(probs: torch.Tensor) -> torch.Tensor:
    top2 = probs.topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]


def top_two_margin(probs: torch.Tensor) -> torch.Tensor:
    """``probs[..., V]`` -> largest minus second-largest value along the last dimension, ``[...]``."""
    if uses_kernel(probs):
        from mdsample.core import top_two_triton

        return top_two_triton.top_two_margin(probs)
    return top_two_margin_reference(probs)
