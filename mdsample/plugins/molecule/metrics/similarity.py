"""IntDiv, IntDiv2 and SNN (MOSES): Tanimoto similarities of Morgan fingerprints (radius 2, 1024 bits).

MOSES's definitions (``average_agg_tanimoto``), for generated fingerprints g_i and a stock s_j:

- SNN: mean_i max_j T(g_i, s_j) against all the fingerprints of a reference set (MOSES's own, shipped whole);
- IntDiv_p: 1 - mean_i (mean_j T(g_i, g_j)^p)^(1/p) over the generated set itself, self-pairs included, so a
  set of copies of one molecule scores 0 (IntDiv is p = 1, IntDiv2 is p = 2);
- T of two empty fingerprints (0 / 0) counts as 1, as in MOSES.

The bit overlaps are one integer matrix product per chunk of the stock (int8 operands, exact int32 sums), which is
what makes SNN against 176k molecules take seconds. NaN when there is no generated fingerprint.
"""

from __future__ import annotations

import numpy as np
import torch

NAN = float("nan")
CHUNK = 4096
"""Stock rows multiplied at a time: bounds the working memory (a 4096 x N float32 overlap matrix)."""


def _overlap(stock: torch.Tensor, gen_t: torch.Tensor) -> torch.Tensor:
    """``stock @ gen_t`` for 0/1 int8 operands, as exact float32 counts; integer GEMM where the backend has one."""
    try:
        return torch._int_mm(stock, gen_t).float()
    except RuntimeError:  # shapes or devices the int8 kernel does not take
        return stock.float() @ gen_t.float()


def _tanimoto(stock: torch.Tensor, gen_t: torch.Tensor, gen_counts: torch.Tensor) -> torch.Tensor:
    both = _overlap(stock, gen_t)
    union = stock.sum(1, dtype=torch.float32, keepdim=True) + gen_counts - both
    return torch.where(union > 0, both / union.clamp(min=1), torch.ones_like(both))


def _chunks(stock: torch.Tensor):
    for start in range(0, len(stock), CHUNK):
        yield stock[start : start + CHUNK]


def _gen(bits: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    gen_t = torch.from_numpy(np.ascontiguousarray(bits.T)).to(torch.int8).contiguous()
    return gen_t, gen_t.sum(0, dtype=torch.float32)[None, :]


def nearest_neighbour_similarity(bits: np.ndarray, reference: torch.Tensor) -> float:
    """SNN of generated fingerprints ``bits`` (``uint8 [N, 1024]``) against reference bits (``int8 [M, 1024]``)."""
    if len(bits) == 0 or len(reference) == 0:
        return NAN
    gen_t, counts = _gen(bits)
    best = torch.zeros(len(bits))
    for stock in _chunks(reference):
        best = torch.maximum(best, _tanimoto(stock, gen_t, counts).amax(0))
    return float(best.double().mean())


def internal_diversity(bits: np.ndarray, p: int = 1) -> float:
    """IntDiv_p of generated fingerprints ``bits`` (``uint8 [N, 1024]``)."""
    if len(bits) == 0:
        return NAN
    gen_t, counts = _gen(bits)
    total = torch.zeros(len(bits), dtype=torch.float64)
    for stock in _chunks(torch.from_numpy(bits).to(torch.int8)):
        total += _tanimoto(stock, gen_t, counts).pow(p).sum(0, dtype=torch.float64)
    return float(1.0 - (total / len(bits)).pow(1.0 / p).mean())
