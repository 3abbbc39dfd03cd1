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
