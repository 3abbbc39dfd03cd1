"""A "skinny" GEMM for decoding's linear layers: y[M, N] = x[M, K] @ W[N, K]^T (+ bias) with few rows (M <= 64),
W row-major as nn.Linear stores it, half / bf16 in and out (float32 too, for the tests), float32 accumulation.

Why: at batch 1 a LLaDA-8B step multiplies one block of 32 query rows by every weight matrix, so its four linear
layers per transformer layer are bound by reading W from HBM. cuBLAS's kernels for these shapes reached ~86% of an
H200's copy bandwidth, and for the two matrices with N = 4096 (o_proj, down) it split K over a second
``splitKreduce`` kernel plus a memset of its workspace. Here every program owns a BLOCK_N slice of the output columns
and streams its W rows once over K, software-pipelined (``num_stages``), so W is read exactly once at full width.

The product is computed transposed, acc[BLOCK_N, BLOCK_M] = W_tile @ x_tile^T: the wide operand (W) is the MMA's
M side, which is at least 16 and up to 128 wide, while x only needs BLOCK_M = max(16, next_pow2(M)) padded rows.

When N has too few BLOCK_N tiles to fill the SMs (N = 4096 gives 64 tiles of 64), K is split over SPLIT programs per
tile. Each writes its float32 partial sum to a workspace and bumps the tile's int32 counter; the program that arrives
last (the counter says which) adds the SPLIT partials in split order 0, 1, ... and writes y, so the result does not
depend on which program finishes last: deterministic, one launch, no memset (the last program resets its counter).
The counter is only for ordering (which program reduces), never for summing values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl


@dataclass(frozen=True)
class SkinnyConfig:
    """One launch configuration: output columns per program, K per pipelined step, the programs K is split over,
    and the usual Triton warps / pipeline stages."""

    block_n: int
    block_k: int
    split: int = 1
    num_warps: int = 4
    num_stages: int = 4


CANDIDATES = (
    SkinnyConfig(64, 128, 1, 4, 5),
    SkinnyConfig(128, 128, 1, 4, 3),
    SkinnyConfig(32, 256, 1, 4, 4),
    SkinnyConfig(16, 256, 1, 4, 5),
    SkinnyConfig(64, 128, 2, 4, 5),
    SkinnyConfig(64, 128, 4, 4, 5),
    SkinnyConfig(32, 256, 2, 4, 4),
)
"""What benchmarks/skinny_gemm.py times per shape: one program per column slice (16 to 128 columns) or K split over
2 or 4 programs for the N = 3584 / 4096 / 4608 matrices that have few column tiles."""

SMS = 132
"""Streaming multiprocessors assumed off CUDA (an H100 / H200 SXM has 132)."""


@triton.jit
def _skinny_kernel(x_ptr, w_ptr, b_ptr, y_ptr, part_ptr, count_ptr, M, N, K, x_row, w_row, k_per_split, steps,
                   HAS_BIAS: tl.constexpr, EVEN_K: tl.constexpr, SPLIT: tl.constexpr, PRECISION: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    tile = tl.program_id(0)
    part = tl.program_id(1)
    n = tile * BLOCK_N + tl.arange(0, BLOCK_N)
    m = tl.arange(0, BLOCK_M)
    w_rows = w_ptr + n[:, None].to(tl.int64) * w_row
    x_rows = x_ptr + m[:, None].to(tl.int64) * x_row
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    start = part * k_per_split
    for step in range(0, steps):  # k_per_split / BLOCK_K
        k = start + step * BLOCK_K + tl.arange(0, BLOCK_K)
        if EVEN_K:
            w = tl.load(w_rows + k[None, :], mask=n[:, None] < N, other=0.0)
            x = tl.load(x_rows + k[None, :], mask=m[:, None] < M, other=0.0)
        else:
            w = tl.load(w_rows + k[None, :], mask=(n[:, None] < N) & (k[None, :] < K), other=0.0)
            x = tl.load(x_rows + k[None, :], mask=(m[:, None] < M) & (k[None, :] < K), other=0.0)
        acc = tl.dot(w, tl.trans(x), acc, input_precision=PRECISION)
    out = (n[:, None] < N) & (m[None, :] < M)
    if SPLIT > 1:
        cells = m[None, :].to(tl.int64) * N + n[:, None]
        tl.store(part_ptr + part * M * N + cells, acc, mask=out)
        tl.debug_barrier()  # every thread's partial is written before the counter says so (release, gpu scope)
        if tl.atomic_add(count_ptr + tile, 1, sem="acq_rel", scope="gpu") == SPLIT - 1:
            acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
            for s in tl.static_range(SPLIT):  # split order, whichever program arrived last
                acc += tl.load(part_ptr + s * M * N + cells, mask=out, other=0.0, cache_modifier=".cg")
            _store(acc, b_ptr, y_ptr, n, m, N, out, HAS_BIAS)
            tl.store(count_ptr + tile, 0)  # ready for the next launch, no memset
    else:
        _store(acc, b_ptr, y_ptr, n, m, N, out, HAS_BIAS)


@triton.jit
def _store(acc, b_ptr, y_ptr, n, m, N, out, HAS_BIAS: tl.constexpr):
    """y[m, n] = acc[n, m] (+ bias[n]), rounded once to y's dtype."""
    if HAS_BIAS:
        acc += tl.load(b_ptr + n, mask=n < N, other=0.0).to(tl.float32)[:, None]
    tl.store(y_ptr + m[None, :].to(tl.int64) * N + n[:, None], acc.to(y_ptr.dtype.element_ty), mask=out)


def choose(m: int, n: int, k: int, sms: int = SMS) -> SkinnyConfig:
    """A candidate for ``[m, k] @ [n, k]^T`` on ``sms`` SMs: the one whose busiest SM streams the fewest W bytes,
    counting a program per SM per wave (the kernel is bound by W reads, so that is its time). Ties go to fewer splits
    (no partial traffic), then to wider tiles (fewer x re-reads); configs splitting K into pieces shorter than four
    pipelined steps are skipped. ``m`` is unused until measurements say the best tile depends on it."""
    del m

    def cost(c: SkinnyConfig) -> tuple[int, int, int]:
        programs = triton.cdiv(n, c.block_n) * c.split
        busiest = triton.cdiv(programs, sms) * c.block_n * triton.cdiv(k, c.split)
        return busiest, c.split, -c.block_n

    fits = [c for c in CANDIDATES if k // c.split >= 4 * c.block_k]
    return min(fits or CANDIDATES[:1], key=cost)


_workspaces: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _workspace(device: torch.device, partials: int, tiles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The split-K partials (float32) and per-tile counters (int32, zero between launches) of the current stream,
    grown on demand. Per stream because launches on one stream run in order, so they can share it; under CUDA graph
    capture warm up on the capture stream first, so the graph uses an already zeroed buffer."""
    key = (device, torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0)
    part, count = _workspaces.get(key, (None, None))
    if part is None or part.numel() < partials:
        part = torch.empty(partials, dtype=torch.float32, device=device)
    if count is None or count.numel() < tiles:
        count = torch.zeros(tiles, dtype=torch.int32, device=device)
    _workspaces[key] = part, count
    return part, count


def skinny_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  config: SkinnyConfig | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for ``x[..., K]`` with at most 64 rows (any row stride, contiguous last
    dimension) and ``weight[N, K]`` with a contiguous last dimension; ``config`` overrides ``choose``."""
    n, k = weight.shape
    flat = x.reshape(-1, k)
    if flat.stride(-1) != 1:
        flat = flat.contiguous()
    rows = flat.shape[0]
    if rows > 64:
        raise ValueError(f"skinny_linear takes at most 64 rows, got {rows}")
    if weight.stride(-1) != 1:
        raise ValueError("skinny_linear needs a weight with a contiguous last dimension")
    y = torch.empty(rows, n, dtype=x.dtype, device=x.device)
    if rows and n:
        sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else SMS
        c = config or choose(rows, n, k, sms)
        tiles = triton.cdiv(n, c.block_n)
        k_per_split = triton.cdiv(triton.cdiv(k, c.split), c.block_k) * c.block_k
        part, count = _workspace(x.device, c.split * rows * n, tiles) if c.split > 1 else (y, y)
        _skinny_kernel[(tiles, c.split)](
            flat, weight, bias if bias is not None else weight, y, part, count, rows, n, k, flat.stride(0),
            weight.stride(0), k_per_split, k_per_split // c.block_k, HAS_BIAS=bias is not None,
            EVEN_K=k % (c.split * c.block_k) == 0, SPLIT=c.split,
            PRECISION="ieee" if x.dtype == torch.float32 else "tf32",
            BLOCK_M=max(16, triton.next_power_of_2(rows)), BLOCK_N=c.block_n, BLOCK_K=c.block_k,
            num_warps=c.num_warps, num_stages=c.num_stages)
    return y.view(*x.shape[:-1], n)
