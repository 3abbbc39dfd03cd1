"""The cached step's attention as one Triton kernel: a few queries per row against a KV store's slots, written in the
layout the output projection reads.

Why: under the dual cache a batch-1 step of LLaDA-8B attends 32 queries per head to 385 stored keys. That is about
6 MB of keys and values per layer, 1.5 us of reads, yet SDPA's cuDNN kernel took 8.5 us per layer (0.27 ms of a
4.96 ms step on an H200, benchmarks/rule_step.py ``--profile``): its tiles are sized for long query sequences. Here a
program holds one head's queries (up to ``BLOCK_Q``) and streams the row's keys and values once, with the online
softmax of flash attention, in float32; grouped-query heads read their shared key/value head. The output is
``[B, Q, heads * dim]``, the output projection's input, with no transpose copy.

Imported only on CUDA (and by the tests under Triton's interpreter), like models/fused_triton.py.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _attend_kernel(q_ptr, k_ptr, v_ptr, mask_ptr, out_ptr, n_q, n_keys, heads, group, scale,
                   q_b, q_l, q_h, k_b, k_h, k_l, v_b, v_h, v_l, mask_b, out_b, out_l,
                   HAS_MASK: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, DIM: tl.constexpr):
    bh = tl.program_id(0)
    b, h = (bh // heads).to(tl.int64), bh % heads
    kv = (h // group).to(tl.int64)
    rows = tl.program_id(1) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    dims = tl.arange(0, DIM)
    q = tl.load(q_ptr + b * q_b + rows[:, None] * q_l + h * q_h + dims[None, :], mask=rows[:, None] < n_q, other=0.0)
    top = tl.full((BLOCK_Q,), float("-inf"), tl.float32)
    total = tl.zeros((BLOCK_Q,), tl.float32)
    acc = tl.zeros((BLOCK_Q, DIM), tl.float32)
    k_base = k_ptr + b * k_b + kv * k_h
    v_base = v_ptr + b * v_b + kv * v_h
    for start in range(0, n_keys, BLOCK_K):
        cols = start + tl.arange(0, BLOCK_K)
        inside = cols < n_keys
        k = tl.load(k_base + cols[:, None] * k_l + dims[None, :], mask=inside[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)).to(tl.float32) * scale
        if HAS_MASK:
            s += tl.load(mask_ptr + b * mask_b + cols, mask=inside, other=0.0).to(tl.float32)[None, :]
        s = tl.where(inside[None, :], s, float("-inf"))
        new_top = tl.maximum(top, tl.max(s, axis=1))
        shift = tl.where(new_top == float("-inf"), 0.0, new_top)  # no key seen yet (masked): nothing to rescale
        alpha = tl.exp(top - shift)
        p = tl.exp(s - shift[:, None])
        total = total * alpha + tl.sum(p, axis=1)
        v = tl.load(v_base + cols[:, None] * v_l + dims[None, :], mask=inside[:, None], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v).to(tl.float32)
        top = new_top
    out = acc / total[:, None]
    tl.store(out_ptr + b * out_b + rows[:, None] * out_l + h * DIM + dims[None, :], out.to(out_ptr.dtype.element_ty),
             mask=rows[:, None] < n_q)


def attend(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, n_keys: int,
           mask: torch.Tensor | None) -> torch.Tensor:
    """``q[B, Q, heads, dim]`` against the first ``n_keys`` slots of ``keys`` / ``values[B, kv_heads, T, dim]``
    (additive ``mask[B, 1, 1, n_keys]`` or None) -> ``[B, Q, heads * dim]``; see fused.attend_reference."""
    b, n_q, heads, dim = q.shape
    out = torch.empty(b, n_q, heads * dim, dtype=q.dtype, device=q.device)
    if out.numel():
        block_q = max(16, min(triton.next_power_of_2(n_q), 64))
        flat_mask = mask.reshape(mask.shape[0], -1) if mask is not None else q
        _attend_kernel[(b * heads, triton.cdiv(n_q, block_q))](
            q, keys, values, flat_mask, out, n_q, n_keys, heads, heads // keys.shape[1], dim ** -0.5,
            q.stride(0), q.stride(1), q.stride(2), keys.stride(0), keys.stride(1), keys.stride(2),
            values.stride(0), values.stride(1), values.stride(2),
            flat_mask.stride(0) if mask is not None and mask.shape[0] > 1 else 0, out.stride(0), out.stride(1),
            HAS_MASK=mask is not None, BLOCK_Q=block_q, BLOCK_K=64, DIM=dim, num_warps=4, num_stages=2)
    return out
