"""The Triton kernels of core/kl_history.py. The vocabulary of each (row, window position) is split into chunks, one
program each, that stream it once and leave a partial KL sum; a second kernel, one program per row, adds each
position's partial sums (in a fixed order, so the result is deterministic), pushes the KLs onto the row's history
and clears the row's stale marks (one program per row, so no other program reads them after they are cleared; a
barrier inside it orders its threads' reads before its writes).

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
def _kl_partial_kernel(p_ptr, prev_ptr, stale_ptr, rows_ptr, live_ptr, partial_ptr, window, vocab, chunks, p_batch,
                       p_pos, prev_batch, prev_pos, eps, log_eps, HAS_LIVE: tl.constexpr, CHUNK: tl.constexpr,
                       BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    part = tl.program_id(1)
    r = pid // window
    w = pid % window
    src = tl.load(rows_ptr + r).to(tl.int64)
    write = True
    if HAS_LIVE:
        write = tl.load(live_ptr + r) != 0
    stale = tl.load(stale_ptr + src)
    p_base = p_ptr + r.to(tl.int64) * p_batch + w.to(tl.int64) * p_pos
    q_base = prev_ptr + src * prev_batch + w.to(tl.int64) * prev_pos
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, CHUNK, BLOCK):
        offs = part * CHUNK + start + tl.arange(0, BLOCK)
        inside = offs < vocab
        p = tl.load(p_base + offs, mask=inside, other=0.0)
        q = tl.where(stale != 0, log_eps, tl.load(q_base + offs, mask=inside & (stale == 0), other=0.0))
        log_p = tl.log(p + eps)
        acc += tl.where(inside, p * (log_p - q), 0.0)
        tl.store(q_base + offs, log_p, mask=inside & write)
    tl.store(partial_ptr + pid.to(tl.int64) * chunks + part, tl.sum(acc, axis=0))


@triton.jit
def _kl_push_kernel(partial_ptr, hist_ptr, out_ptr, stale_prev_ptr, stale_kl_ptr, rows_ptr, live_ptr, window, chunks,
                    H: tl.constexpr, H_LANES: tl.constexpr, W_LANES: tl.constexpr, CHUNK_LANES: tl.constexpr,
                    HAS_LIVE: tl.constexpr):
    r = tl.program_id(0).to(tl.int64)
    src = tl.load(rows_ptr + r).to(tl.int64)
    write = True
    if HAS_LIVE:
        write = tl.load(live_ptr + r) != 0
    stale = tl.load(stale_kl_ptr + src) != 0
    pos = tl.arange(0, W_LANES)
    parts = tl.arange(0, CHUNK_LANES)
    partial = tl.load(partial_ptr + (r * window + pos[:, None]) * chunks + parts[None, :],
                      mask=(pos[:, None] < window) & (parts[None, :] < chunks), other=0.0)
    kl = tl.sum(partial, axis=1)
    lanes = tl.arange(0, H_LANES)[None, :]
    inside = (pos[:, None] < window) & (lanes < H)
    h_base = hist_ptr + (src * window + pos[:, None]) * H
    kept = tl.where(stale, 0.0, tl.load(h_base + lanes, mask=inside, other=0.0))
    older = tl.where(stale, 0.0, tl.load(h_base + lanes + 1, mask=inside & (lanes < H - 1), other=0.0))
    new = tl.where(write, tl.where(lanes == H - 1, kl[:, None], older), kept)
    tl.debug_barrier()  # every thread has read the history and the stale mark before any thread overwrites them
    tl.store(h_base + lanes, new, mask=inside)
    tl.store(out_ptr + (r * window + pos[:, None]) * H + lanes, new, mask=inside)
    if write:
        tl.store(stale_prev_ptr + src, 0)
        tl.store(stale_kl_ptr + src, 0)


def kl_update(probs: torch.Tensor, history, rows: torch.Tensor, live: torch.Tensor | None) -> torch.Tensor:
    """KLHistory.update (``history``) on CUDA."""
    n, window, vocab = probs.shape
    depth = history.kl.shape[-1]
    out = torch.empty(n, window, depth, dtype=history.kl.dtype, device=probs.device)
    if n == 0:
        return out
    flags = rows if live is None else live.to(torch.int8)
    chunks = triton.cdiv(vocab, CHUNK)
    partial = torch.empty(n * window, chunks, dtype=torch.float32, device=probs.device)
    stale_prev, stale_kl = history.stale_prev.view(torch.int8), history.stale_kl.view(torch.int8)
    _kl_partial_kernel[(n * window, chunks)](
        probs, history.prev, stale_prev, rows, flags, partial, window, vocab, chunks, probs.stride(0),
        probs.stride(1), history.prev.stride(0), history.prev.stride(1), history.eps, history.log_eps,
        HAS_LIVE=live is not None, CHUNK=CHUNK, BLOCK=2048, num_warps=8)
    _kl_push_kernel[(n,)](
        partial, history.kl, out, stale_prev, stale_kl, rows, flags, window, chunks, H=depth,
        H_LANES=max(2, triton.next_power_of_2(depth)), W_LANES=max(2, triton.next_power_of_2(window)),
        CHUNK_LANES=max(2, triton.next_power_of_2(chunks)), HAS_LIVE=live is not None, num_warps=4)
    return out
