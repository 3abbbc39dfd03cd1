"""The Triton kernels of core/kl_update.py. The vocabulary of each (row, window position) is split into chunks, one
program each, that stream it once and leave a partial KL sum; a second kernel adds a position's partial sums (in a
fixed order, so the result is deterministic) and pushes the KL onto its history.

Why two kernels: with one program per position, a batch-1 step (32 positions) kept 32 of an H200's 132 SMs busy and
the pass over LLaDA's 126k-token vocabulary took 0.10 ms, 2% of the step (benchmarks/rule_step.py ``--profile``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

CHUNK = 8192
"""Vocabulary entries per program of the first kernel."""


@triton.jit
def _kl_partial_kernel(p_ptr, prev_ptr, rows_ptr, live_ptr, partial_ptr, window, vocab, chunks, p_batch, p_pos,
                       prev_batch, prev_pos, eps, HAS_LIVE: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    part = tl.program_id(1)
    r = pid // window
    w = pid % window
    src = tl.load(rows_ptr + r).to(tl.int64)
    write = True
    if HAS_LIVE:
        write = tl.load(live_ptr + r) != 0
    p_base = p_ptr + r.to(tl.int64) * p_batch + w.to(tl.int64) * p_pos
    q_base = prev_ptr + src * prev_batch + w.to(tl.int64) * prev_pos
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, CHUNK, BLOCK):
        offs = part * CHUNK + start + tl.arange(0, BLOCK)
        inside = offs < vocab
        p = tl.load(p_base + offs, mask=inside, other=0.0)
        q = tl.load(q_base + offs, mask=inside, other=0.0)
        log_eps = tl.log(p + eps)
        acc += tl.where(inside, p * (log_eps - q), 0.0)
        tl.store(q_base + offs, log_eps, mask=inside & write)
    tl.store(partial_ptr + pid.to(tl.int64) * chunks + part, tl.sum(acc, axis=0))


@triton.jit
def _kl_push_kernel(partial_ptr, hist_ptr, out_ptr, rows_ptr, live_ptr, window, chunks, H: tl.constexpr,
                    H_LANES: tl.constexpr, HAS_LIVE: tl.constexpr, CHUNK_LANES: tl.constexpr):
    pid = tl.program_id(0)
    r = pid // window
    w = pid % window
    src = tl.load(rows_ptr + r).to(tl.int64)
    write = True
    if HAS_LIVE:
        write = tl.load(live_ptr + r) != 0
    parts = tl.arange(0, CHUNK_LANES)
    kl = tl.sum(tl.load(partial_ptr + pid.to(tl.int64) * chunks + parts, mask=parts < chunks, other=0.0), axis=0)
    lanes = tl.arange(0, H_LANES)
    h_base = hist_ptr + (src * window + w) * H
    kept = tl.load(h_base + lanes, mask=lanes < H, other=0.0)
    pushed = tl.where(lanes == H - 1, kl, tl.load(h_base + lanes + 1, mask=lanes < H - 1, other=0.0))
    new = tl.where(write, pushed, kept)
    tl.store(h_base + lanes, new, mask=lanes < H)
    tl.store(out_ptr + pid.to(tl.int64) * H + lanes, new, mask=lanes < H)


def kl_update(probs: torch.Tensor, prev: torch.Tensor, history: torch.Tensor, rows: torch.Tensor,
              live: torch.Tensor | None, eps: float) -> torch.Tensor:
    n, window, vocab = probs.shape
    depth = history.shape[-1]
    out = torch.empty(n, window, depth, dtype=history.dtype, device=history.device)
    if n == 0:
        return out
    flags = rows if live is None else live.to(torch.int8)
    chunks = triton.cdiv(vocab, CHUNK)
    partial = torch.empty(n * window, chunks, dtype=torch.float32, device=probs.device)
    _kl_partial_kernel[(n * window, chunks)](
        probs, prev, rows, flags, partial, window, vocab, chunks, probs.stride(0), probs.stride(1), prev.stride(0),
        prev.stride(1), eps, HAS_LIVE=live is not None, CHUNK=CHUNK, BLOCK=2048, num_warps=8)
    _kl_push_kernel[(n * window,)](
        partial, history, out, rows, flags, window, chunks, H=depth, H_LANES=max(2, triton.next_power_of_2(depth)),
        HAS_LIVE=live is not None, CHUNK_LANES=max(2, triton.next_power_of_2(chunks)), num_warps=1)
    return out
