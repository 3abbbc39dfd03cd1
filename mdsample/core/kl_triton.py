"""The Triton kernel of core/kl_update.py: one program per (row, window position) streams the vocabulary once."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _kl_update_kernel(p_ptr, prev_ptr, rows_ptr, live_ptr, kl_ptr, window, vocab, p_batch, p_pos, prev_batch,
                      prev_pos, eps, HAS_LIVE: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    r = pid // window
    w = pid % window
    src = tl.load(rows_ptr + r).to(tl.int64)
    write = True
    if HAS_LIVE:
        write = tl.load(live_ptr + r) != 0
    p_base = p_ptr + r.to(tl.int64) * p_batch + w.to(tl.int64) * p_pos
    q_base = prev_ptr + src * prev_batch + w.to(tl.int64) * prev_pos
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, vocab, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        inside = offs < vocab
        p = tl.load(p_base + offs, mask=inside, other=0.0)
        q = tl.load(q_base + offs, mask=inside, other=0.0)
        log_eps = tl.log(p + eps)
        acc += tl.where(inside, p * (log_eps - q), 0.0)
        tl.store(q_base + offs, log_eps, mask=inside & write)
    tl.store(kl_ptr + pid, tl.sum(acc, axis=0))


def kl_update(probs: torch.Tensor, prev: torch.Tensor, rows: torch.Tensor, live: torch.Tensor | None,
              eps: float) -> torch.Tensor:
    n, window, vocab = probs.shape
    kl = torch.empty(n, window, dtype=probs.dtype, device=probs.device)
    if n == 0:
        return kl
    flags = rows if live is None else live.to(torch.int8)
    _kl_update_kernel[(n * window,)](
        probs, prev, rows, flags, kl, window, vocab, probs.stride(0), probs.stride(1), prev.stride(0),
        prev.stride(1), eps, HAS_LIVE=live is not None, BLOCK=2048, num_warps=8)
    return kl
