"""The Triton kernel of core/top_two.py: one program per position streams its vocabulary once.

Each lane keeps the largest and second-largest value it has seen; at the end the overall largest is the largest
lane's first, and the second is the larger of that lane's second and every other lane's first.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _top_two_kernel(p_ptr, out_ptr, vocab, stride, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    base = p_ptr + pid.to(tl.int64) * stride
    lanes = tl.arange(0, BLOCK)
    first = tl.full([BLOCK], float("-inf"), tl.float32)
    second = tl.full([BLOCK], float("-inf"), tl.float32)
    for start in range(0, vocab, BLOCK):
        offs = start + lanes
        x = tl.load(base + offs, mask=offs < vocab, other=float("-inf"))
        second = tl.maximum(second, tl.minimum(first, x))
        first = tl.maximum(first, x)
    top = tl.argmax(first, axis=0)
    best = tl.max(first, axis=0)
    others = tl.max(tl.where(lanes == top, float("-inf"), first), axis=0)
    runner_up = tl.maximum(tl.max(tl.where(lanes == top, second, float("-inf")), axis=0), others)
    tl.store(out_ptr + pid, best - runner_up)


def top_two_margin(probs: torch.Tensor) -> torch.Tensor:
    flat = probs.reshape(-1, probs.shape[-1])
    out = torch.empty(flat.shape[0], dtype=probs.dtype, device=probs.device)
    _top_two_kernel[(flat.shape[0],)](flat, out, flat.shape[1], flat.stride(0), BLOCK=1024, num_warps=4)
    return out.view(probs.shape[:-1])
