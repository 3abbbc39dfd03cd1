"""The Denoiser protocol: what the core needs from a model, and nothing more.

A denoiser maps a batch of partially masked canvases to per-position logits over the vocabulary. Plugins wrap
transformers / diffusers / house models into it. Conditioning (class labels, attention masks, guidance inputs)
travels as keyword tensors whose first dimension is the batch, so that decode() can drop finished rows from every
call without knowing what the tensors mean. A KV cache, when a denoiser offers one, is driven by the loop through
the optional methods of ``CachingDenoiser``; rules never see it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Denoiser(Protocol):
    """``denoiser(tokens[B, L], **conditioning) -> logits[B, L, V]`` with ``mask_id`` and ``vocab_size``."""

    mask_id: int
    vocab_size: int

    def __call__(self, tokens: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class CachingDenoiser(Denoiser, Protocol):
    """A denoiser that can reuse attention keys/values across steps (prefix or dual cache).

    ``begin_block(tokens, block_start, block_end, **conditioning)`` is called by the loop when the active block
    changes (so the cache can be refreshed); ``__call__`` may then compute only what the cache does not hold.
    """

    def begin_block(
        self, tokens: torch.Tensor, block_start: int, block_end: int, **conditioning: torch.Tensor
    ) -> None: ...


class ModuleDenoiser:
    """Adapts any ``torch.nn.Module`` returning logits (or an object with ``.logits``) to the Denoiser protocol."""

    def __init__(self, module: torch.nn.Module, mask_id: int, vocab_size: int):
        self.module = module
        self.mask_id = mask_id
        self.vocab_size = vocab_size

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        out = self.module(tokens, **conditioning)
        return out.logits if hasattr(out, "logits") else out
