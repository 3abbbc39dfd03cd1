"""KLASS's history (core/kl_history.py): the update's semantics, the lazy reset of rows that moved, and the CUDA
kernels against the reference."""

from __future__ import annotations

import pytest
import torch

from mdsample.core.kl_history import KLHistory, kl_update_reference, uses_kernel
from mdsample.core.stats import KL_EPS


def distributions(n: int, window: int, vocab: int, device: str, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, window, vocab, generator=g, dtype=torch.float64) * 4
    logits[..., 3] = float("-inf")  # a forbidden token (the mask): p = 0 exactly
    return torch.softmax(logits, dim=-1).to(device=device, dtype=dtype)


def filled(batch: int, window: int, vocab: int, depth: int, device: str, dtype: torch.dtype) -> KLHistory:
    """A history with random stored distributions and KL values, rows 1 and 4 stale (4 in its KL only)."""
    history = KLHistory(batch, window, vocab, depth, torch.device(device), dtype)
    history.prev.copy_(torch.log(distributions(batch, window, vocab, device, dtype, 0) + KL_EPS))
    history.kl.copy_(torch.rand(batch, window, depth, generator=torch.Generator().manual_seed(2), dtype=dtype))
    history.stale_prev[1] = history.stale_kl[1] = history.stale_kl[4] = True
    return history


def expected_kl(p: torch.Tensor, q: torch.Tensor) -> float:
    return sum(float(p[v]) * (float(torch.log(p[v] + KL_EPS)) - float(q[v])) for v in range(p.shape[0]))


@pytest.mark.parametrize("live", [None, [True, False, True, True]])
def test_update_pushes_the_kl_stores_log_p_and_reads_stale_rows_as_fresh(live):
    batch, window, vocab, depth = 5, 4, 7, 3
    history = filled(batch, window, vocab, depth, "cpu", torch.float64)
    prev, kl = history.prev.clone(), history.kl.clone()
    probs = distributions(4, window, vocab, "cpu", torch.float64, 1)
    rows = torch.tensor([4, 0, 2, 1])
    flags = None if live is None else torch.tensor(live)
    out = history.update(rows, probs, flags)
    for i, r in enumerate(rows.tolist()):
        written = live is None or live[i]
        was = torch.zeros(window, depth, dtype=torch.float64) if r in (1, 4) else kl[r]  # stale KL reads as zeros
        for w in range(window):
            q = torch.full((vocab,), history.log_eps, dtype=torch.float64) if r == 1 else prev[r, w]
            if written:
                assert out[i, w, -1].item() == pytest.approx(expected_kl(probs[i, w], q), rel=1e-12, abs=1e-15)
                assert torch.equal(out[i, w, :-1], was[w, 1:])
            else:
                assert torch.equal(out[i, w], was[w])
        assert torch.equal(out[i], history.kl[r])
        assert torch.equal(history.prev[r], torch.log(probs[i] + KL_EPS) if written else prev[r])
        assert bool(history.stale_prev[r]) == (r == 1 and not written)
        assert bool(history.stale_kl[r]) == (r in (1, 4) and not written)
    assert torch.equal(history.prev[3], prev[3]) and torch.equal(history.kl[3], kl[3])  # row 3 was not stepped
    assert not uses_kernel(probs, history)  # CPU (and float64): the reference runs


def test_shift_marks_moved_rows_and_fill_clears_the_previous_distribution():
    history = KLHistory(3, 4, 6, 2, torch.device("cpu"), torch.float32)
    history.shift(torch.tensor([0, 1, 2]), block=4)  # one-block window: lazy
    assert history.stale_prev.tolist() == history.stale_kl.tolist() == [False, True, True]
    history.fill(torch.tensor([1]), torch.zeros(1, 4, 6))
    assert history.stale_prev.tolist() == [False, False, True] and history.stale_kl.tolist() == [False, True, True]
    assert torch.equal(history.prev[1], torch.zeros(4, 6))


def test_two_block_window_shift_inherits_the_next_half_and_resets_the_rest():
    history = KLHistory(2, 4, 3, 2, torch.device("cpu"), torch.float32)
    history.prev.copy_(torch.arange(24.0).view(2, 4, 3))
    history.kl.copy_(torch.arange(16.0).view(2, 4, 2) + 1)
    prev, kl = history.prev.clone(), history.kl.clone()
    history.shift(torch.tensor([1, 0]), block=2)
    assert torch.equal(history.prev[0, :2], prev[0, 2:]) and torch.equal(history.kl[0, :2], kl[0, 2:])
    assert torch.all(history.prev[0, 2:] == history.log_eps) and torch.all(history.kl[0, 2:] == 0)
    assert torch.equal(history.prev[1], prev[1]) and torch.equal(history.kl[1], kl[1])
    assert not history.stale_prev.any() and not history.stale_kl.any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the Triton kernels run on CUDA")
@pytest.mark.parametrize("vocab", [5000, 126464])
@pytest.mark.parametrize("live", [None, [True, False, True, True]])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("window", [32, 64])
def test_cuda_kernels_match_the_reference(vocab, live, depth, window):
    batch = 5
    history = filled(batch, window, vocab, depth, "cuda", torch.float32)
    expected = filled(batch, window, vocab, depth, "cuda", torch.float32)
    probs = distributions(4, window, vocab, "cuda", torch.float32, 1)
    rows = torch.tensor([4, 0, 2, 1], device="cuda")
    flags = None if live is None else torch.tensor(live, device="cuda")
    assert uses_kernel(probs, history)
    want = kl_update_reference(probs, expected, rows, flags)
    got = history.update(rows, probs, flags)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(history.kl, expected.kl, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(history.prev, expected.prev, rtol=1e-6, atol=1e-6)
    assert torch.equal(history.stale_prev, expected.stale_prev) and torch.equal(history.stale_kl, expected.stale_kl)
