"""The margin's one-pass top-two (core/top_two.py): the reference's values, and the CUDA kernel bit-identical to it."""

from __future__ import annotations

import pytest
import torch

from mdsample.core.stats import StepStats
from mdsample.core.top_two import top_two_margin, top_two_margin_reference, uses_kernel


def distributions(n: int, window: int, vocab: int, device: str, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, window, vocab, generator=g, dtype=torch.float64) * 4
    if vocab > 3:
        logits[..., 3] = float("-inf")  # a forbidden token (the mask): p = 0 exactly
    return torch.softmax(logits, dim=-1).to(device=device, dtype=torch.float32)


def ties(device: str) -> torch.Tensor:
    """Rows whose two largest values are equal (margin 0), in the same or in distant columns, and a one-hot row."""
    probs = torch.zeros(4, 3000, device=device)
    probs[0, [10, 2999]] = 0.5
    probs[1, [7, 8]] = 0.4
    probs[1, 100] = 0.2
    probs[2, 0] = 1.0
    probs[3] = 1 / 3000
    return probs


def test_reference_is_top1_minus_top2():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])
    assert torch.allclose(top_two_margin_reference(probs), torch.tensor([0.3, 0.0]))
    assert not uses_kernel(probs)  # CPU: the reference runs
    assert torch.equal(top_two_margin(probs), top_two_margin_reference(probs))


def test_step_stats_margin_uses_it():
    logits = torch.randn(2, 5, 11, generator=torch.Generator().manual_seed(0))
    stats = StepStats(logits, logits.argmax(-1))
    top = torch.softmax(logits, -1).sort(-1, descending=True).values
    assert torch.equal(stats.margin, top[..., 0] - top[..., 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernel runs on CUDA")
@pytest.mark.parametrize("vocab", [2, 1000, 1025, 126464])
def test_cuda_kernel_is_bit_identical_to_topk(vocab):
    probs = distributions(3, 32, vocab, "cuda", vocab)
    assert uses_kernel(probs)
    assert torch.equal(top_two_margin(probs), top_two_margin_reference(probs))
    assert torch.equal(top_two_margin(ties("cuda")), top_two_margin_reference(ties("cuda")))
    assert torch.equal(top_two_margin(ties("cuda")), torch.tensor([0.0, 0.0, 1.0, 0.0], device="cuda"))
