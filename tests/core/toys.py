"""Toy denoisers for the core's tests: small, deterministic, with analytically known behaviour."""

from __future__ import annotations

import math

import torch


class MixingDenoiser:
    """A fixed random bidirectional mixer: logits depend on the whole canvas, so they shift as tokens commit.

    logits[b, i] = sharpness * tanh(sum_j A[i, j] (E[x_j] + P_j)) @ W; the mask token's own logit is very
    negative, as in a trained model. Deterministic given the seed; rows are independent.
    """

    def __init__(self, vocab: int = 12, length: int = 16, sharpness: float = 4.0, seed: int = 0, dim: int = 16):
        g = torch.Generator().manual_seed(seed)
        self.vocab_size = vocab
        self.mask_id = vocab - 1
        self.embed = torch.randn(vocab, dim, generator=g, dtype=torch.float64)
        self.pos = torch.randn(length, dim, generator=g, dtype=torch.float64)
        self.mix = torch.randn(length, length, generator=g, dtype=torch.float64) / math.sqrt(length)
        self.out = torch.randn(dim, vocab, generator=g, dtype=torch.float64) * sharpness
        self.calls = 0

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        length = tokens.shape[1]
        h = torch.tanh(torch.einsum("ij,bjd->bid", self.mix[:length, :length], self.embed[tokens] + self.pos[:length]))
        logits = h @ self.out
        logits[..., self.mask_id] = -1e4
        return logits


class ProductDenoiser:
    """A fixed product distribution: every call returns the same logits whatever the canvas (KL is 0 after step 1)."""

    def __init__(self, logits: torch.Tensor, mask_id: int):
        self.logits = logits
        self.vocab_size = logits.shape[-1]
        self.mask_id = mask_id

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(tokens.shape[0], -1, -1).clone()


class CanvasCaching:
    """A CachingDenoiser (core/denoiser.py) over ``model`` whose stored "keys/values" are the canvas tokens.

    A cached call runs ``model`` on the stored canvas with the query tokens written in (kept, as the cache's fresh
    keys/values are) and a peek on a copy of it; so it gives the full forward's logits whenever the positions
    outside its queries hold what they held when stored, as in a decode under the dual cache, whose steps change
    only the active block: no staleness. ``calls`` records (kind, rows, queries) and ``peeked`` each peek's
    (cache rows, first column).
    """

    def __init__(self, model):
        self.model, self.mask_id, self.vocab_size = model, model.mask_id, model.vocab_size
        self.calls: list[tuple[str, int, int]] = []
        self.peeked: list[tuple[list[int], list[int]]] = []

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        self.calls.append(("plain", *tokens.shape))
        return self.model(tokens)

    def new_cache(self, capacity: int, length: int, device: torch.device):
        from mdsample.core.cache import KVCache

        return KVCache([torch.zeros(capacity, length + 1, dtype=torch.long, device=device)], length)

    def prefill(self, tokens, cache, rows, columns=None, **_):
        self.calls.append(("prefill", *tokens.shape))
        cache.tensors[0][:, : tokens.shape[1]].index_copy_(0, rows, tokens)
        logits = self.model(tokens)
        return logits if columns is None else _at(logits, columns)

    def cached(self, tokens, columns, slots, cache, outputs, **_):
        self.calls.append(("cached", *tokens.shape))
        canvas = cache.tensors[0][: tokens.shape[0]]
        canvas.scatter_(1, slots, tokens)
        return _at(self.model(canvas[:, : cache.length]), columns)[:, :outputs]

    def peek(self, tokens, columns, cache, rows, **_):
        self.calls.append(("peek", *tokens.shape))
        self.peeked.append((rows.tolist(), columns[:, 0].tolist()))
        canvas = cache.tensors[0][rows].scatter(1, columns, tokens)
        return _at(self.model(canvas[:, : cache.length]), columns)


def _at(logits: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, columns.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))


class CanvasCachingNoPeek(CanvasCaching):
    """``CanvasCaching`` without the optional ``peek``: the loop keeps KLASS's two-block window under the dual cache."""

    peek = None
