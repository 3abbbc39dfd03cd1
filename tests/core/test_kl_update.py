"""KLASS's fused history update (core/kl_update.py): the reference's semantics, and the CUDA kernel against it."""

from __future__ import annotations

import pytest
import torch

from mdsample.core.kl_update import kl_update, kl_update_reference, uses_kernel
from mdsample.core.stats import KL_EPS


def distributions(n: int, window: int, vocab: int, device: str, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, window, vocab, generator=g, dtype=torch.float64) * 4
    logits[..., 3] = float("-inf")  # a forbidden token (the mask): p = 0 exactly
    return torch.softmax(logits, dim=-1).to(device=device, dtype=dtype)


@pytest.mark.parametrize("live", [None, [True, False, True]])
def test_reference_returns_the_kl_and_stores_log_p_for_live_rows(live):
    batch, window, vocab = 5, 4, 7
    prev = torch.log(distributions(batch, window, vocab, "cpu", torch.float64, 0) + KL_EPS)
    before = prev.clone()
    probs = distributions(3, window, vocab, "cpu", torch.float64, 1)
    rows = torch.tensor([4, 0, 2])
    flags = None if live is None else torch.tensor(live)
    kl = kl_update_reference(probs, prev, rows, flags, KL_EPS)
    for i, r in enumerate(rows.tolist()):
        for w in range(window):
            p, q = probs[i, w], before[r, w]
            expected = sum(float(p[v]) * (float(torch.log(p[v] + KL_EPS)) - float(q[v])) for v in range(vocab))
            assert kl[i, w].item() == pytest.approx(expected, rel=1e-12, abs=1e-15)
        stored = torch.log(probs[i] + KL_EPS) if live is None or live[i] else before[r]
        assert torch.equal(prev[r], stored)
    untouched = [r for r in range(batch) if r not in rows.tolist()]
    assert torch.equal(prev[untouched], before[untouched])
    assert not uses_kernel(probs, prev)  # CPU (and float64): the reference runs
    assert torch.equal(kl_update(probs, before.clone(), rows, flags, KL_EPS), kl)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernel runs on CUDA")
@pytest.mark.parametrize("vocab", [5000, 126464])
@pytest.mark.parametrize("live", [None, [True, False, True]])
def test_cuda_kernel_matches_the_reference(vocab, live):
    batch, window = 5, 32
    prev = torch.log(distributions(batch, window, vocab, "cuda", torch.float32, 0) + KL_EPS)
    probs = distributions(3, window, vocab, "cuda", torch.float32, 1)
    rows = torch.tensor([4, 0, 2], device="cuda")
    flags = None if live is None else torch.tensor(live, device="cuda")
    assert uses_kernel(probs, prev)
    expected_prev = prev.clone()
    expected = kl_update_reference(probs, expected_prev, rows, flags, KL_EPS)
    kl = kl_update(probs, prev, rows, flags, KL_EPS)
    torch.testing.assert_close(kl, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(prev, expected_prev, rtol=1e-6, atol=1e-6)
