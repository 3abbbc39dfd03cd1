"""The skinny GEMM (models/skinny_triton.py) equals F.linear in float32, with and without a bias and split K, on
shapes that are no multiple of its blocks (CUDA, or the CPU under Triton's interpreter: TRITON_INTERPRET=1); its
chooser picks a valid candidate for the LLaDA / Dream shapes; fused.linear is F.linear on the CPU."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from torch.nn import functional as F

from mdsample.models import fused

CUDA = torch.cuda.is_available()
TRITON_DEVICE = "cuda" if CUDA else "cpu"
HAS_TRITON = importlib.util.find_spec("triton") is not None
triton_only = pytest.mark.skipif(
    not HAS_TRITON or not (CUDA or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs Triton and CUDA (or Triton's interpreter: TRITON_INTERPRET=1)")
needs_triton = pytest.mark.skipif(not HAS_TRITON, reason="needs Triton (the chooser uses triton.cdiv)")
# float32: the kernel sums K products in blocks of BLOCK_K, F.linear in its own order
TOLERANCE = dict(atol=1e-4, rtol=1e-4)
# (N, K) of LLaDA-8B's and Dream-7B's layers: qkv, o_proj, gate_up, down, head
MODEL_SHAPES = [(12288, 4096), (4096, 4096), (24576, 4096), (4096, 12288), (126464, 4096),
                (4608, 3584), (3584, 3584), (37888, 3584), (3584, 18944), (152064, 3584)]


def randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(TRITON_DEVICE)


def configs():
    from mdsample.models.skinny_triton import SkinnyConfig

    # one pipelined step, several with a partial last one, and K split 2 / 3 ways (the last split partial)
    return [SkinnyConfig(16, 32, 1, 2, 1), SkinnyConfig(32, 16, 1, 4, 2), SkinnyConfig(16, 16, 2, 2, 2),
            SkinnyConfig(16, 32, 3, 2, 2)]


@triton_only
@pytest.mark.parametrize("rows", [1, 5, 32])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("config", range(4))
def test_skinny_linear_equals_f_linear(rows, bias, config):
    from mdsample.models.skinny_triton import skinny_linear

    n, k = 37, 72  # three column tiles of 16 (the last partial), K no multiple of 32
    x, w = randn(rows, k, seed=1), randn(n, k, seed=2)
    b = randn(n, seed=3) if bias else None
    torch.testing.assert_close(skinny_linear(x, w, b, configs()[config]), F.linear(x, w, b), **TOLERANCE)


@triton_only
@pytest.mark.parametrize("config", [0, 2])
def test_skinny_linear_in_half_rounds_the_float32_sum_once(config):
    from mdsample.models.skinny_triton import skinny_linear

    x, w, b = (randn(5, 72, seed=1).half(), randn(37, 72, seed=2).half(), randn(37, seed=3).half())
    expected = F.linear(x.float(), w.float(), b.float()).half()
    got = skinny_linear(x, w, b, configs()[config])
    assert got.dtype == torch.float16
    torch.testing.assert_close(got, expected, atol=0, rtol=1e-3)  # one rounding (plus float32 sum order)


@triton_only
def test_skinny_linear_keeps_leading_dims_and_reads_strided_rows():
    from mdsample.models.skinny_triton import skinny_linear

    wide, w, b = randn(2, 3, 100, seed=4), randn(20, 64, seed=5), randn(20, seed=6)
    x = wide[..., 10:74]  # rows 100 apart, as a slice of a fused projection's output
    got = skinny_linear(x, w, b)
    assert got.shape == (2, 3, 20)
    torch.testing.assert_close(got, F.linear(x, w, b), **TOLERANCE)


@triton_only
def test_split_k_resets_its_counters_and_is_deterministic():
    """The last program of each tile resets the tile's counter, so repeated launches reduce again (and, adding the
    partials in split order, give the same bits)."""
    from mdsample.models.skinny_triton import skinny_linear

    x, w = randn(5, 72, seed=7), randn(37, 72, seed=8)
    first = skinny_linear(x, w, config=configs()[2])
    second = skinny_linear(x, w, config=configs()[2])
    assert torch.equal(first, second)
    torch.testing.assert_close(first, F.linear(x, w), **TOLERANCE)


@triton_only
def test_skinny_linear_rejects_more_than_64_rows():
    from mdsample.models.skinny_triton import skinny_linear

    with pytest.raises(ValueError, match="64 rows"):
        skinny_linear(randn(65, 16, seed=0), randn(16, 16, seed=1))


@needs_triton
@pytest.mark.parametrize("rows", [1, 32, 64])
@pytest.mark.parametrize("shape", MODEL_SHAPES)
def test_choose_returns_a_candidate_that_covers_the_shape(rows, shape):
    from mdsample.models.skinny_triton import CANDIDATES, choose

    n, k = shape
    c = choose(rows, n, k, sms=132)
    assert c in CANDIDATES
    assert k // c.split >= 4 * c.block_k  # each split streams at least four pipelined steps
    assert n // c.block_n * c.split >= 64  # enough programs for half the SMs at least


def test_fused_linear_is_f_linear_on_the_cpu():
    x, w, b = torch.randn(2, 3, 24), torch.randn(40, 24), torch.randn(40)
    assert torch.equal(fused.linear(x, w, b), F.linear(x, w, b))
    assert torch.equal(fused.linear(x, w), F.linear(x, w))
