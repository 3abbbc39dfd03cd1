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
def test_reference_pushes_the_kl_and_stores_log_p_for_live_rows(live):
    batch, window, vocab, depth = 5, 4, 7, 3
    prev = torch.log(distributions(batch, window, vocab, "cpu", torch.float64, 0) + KL_EPS)
    history = torch.rand(batch, window, depth, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    before, kept = prev.clone(), history.clone()
    probs = distributions(3, window, vocab, "cpu", torch.float64, 1)
    rows = torch.tensor([4, 0, 2])
    flags = None if live is None else torch.tensor(live)
    out = kl_update_reference(probs, prev, history, rows, flags, KL_EPS)
    for i, r in enumerate(rows.tolist()):
        written = live is None or live[i]
        for w in range(window):
            p, q = probs[i, w], before[r, w]
            expected = sum(float(p[v]) * (float(torch.log(p[v] + KL_EPS)) - float(q[v])) for v in range(vocab))
            if written:
                assert out[i, w, -1].item() == pytest.approx(expected, rel=1e-12, abs=1e-15)
                assert torch.equal(out[i, w, :-1], kept[r, w, 1:])
        assert torch.equal(out[i], history[r])
        if not written:
            assert torch.equal(history[r], kept[r])
        stored = torch.log(probs[i] + KL_EPS) if written else before[r]
        assert torch.equal(prev[r], stored)
    untouched = [r for r in range(batch) if r not in rows.tolist()]
    assert torch.equal(prev[untouched], before[untouched]) and torch.equal(history[untouched], kept[untouched])
    assert not uses_kernel(probs, prev, history)  # CPU (and float64): the reference runs
    assert torch.equal(kl_update(probs, before.clone(), kept.clone(), rows, flags, KL_EPS), out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernel runs on CUDA")
@pytest.mark.parametrize("vocab", [5000, 126464])
@pytest.mark.parametrize("live", [None, [True, False, True]])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cuda_kernel_matches_the_reference(vocab, live, depth):
    batch, window = 5, 32
    prev = torch.log(distributions(batch, window, vocab, "cuda", torch.float32, 0) + KL_EPS)
    history = torch.rand(batch, window, depth, generator=torch.Generator().manual_seed(2)).cuda()
    probs = distributions(3, window, vocab, "cuda", torch.float32, 1)
    rows = torch.tensor([4, 0, 2], device="cuda")
    flags = None if live is None else torch.tensor(live, device="cuda")
    assert uses_kernel(probs, prev, history)
    expected_prev, expected_history = prev.clone(), history.clone()
    expected = kl_update_reference(probs, expected_prev, expected_history, rows, flags, KL_EPS)
    out = kl_update(probs, prev, history, rows, flags, KL_EPS)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(history, expected_history, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(prev, expected_prev, rtol=1e-6, atol=1e-6)
