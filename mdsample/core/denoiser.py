"""The Denoiser protocol: what the core needs from a model, and nothing more.

A denoiser maps a batch of partially masked canvases to per-position logits over the vocabulary. Plugins wrap
transformers / diffusers / house models into it. Conditioning (class labels, attention masks, guidance inputs)
travels as keyword tensors whose first dimension is the batch, so that decode() can drop finished rows from every
call without knowing what the tensors mean. A KV cache, when a denoiser offers one, is driven by the loop through
the methods of ``CachingDenoiser``; rules never see it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from mdsample.core.cache import KVCache


@runtime_checkable
class Denoiser(Protocol):
    """``denoiser(tokens[B, L], **conditioning) -> logits[B, L, V]`` with ``mask_id`` and ``vocab_size``.

    A denoiser whose forward compiles to one graph per input shape may declare ``compilable = True`` and a
    ``use_compiled(on: bool)`` switch, so that ``decode.compile`` runs it through torch.compile (core/compile.py).
    """

    mask_id: int
    vocab_size: int

    def __call__(self, tokens: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class CachingDenoiser(Denoiser, Protocol):
    """A denoiser that can reuse attention keys/values across steps (prefix or dual cache, core/cache.py).

    The loop owns the schedule of the cache (when to refresh, which positions to compute); the denoiser owns its
    layout. Rows of a ``KVCache`` live on dim 0; the loop keeps the open rows first (``KVCache.keep``).

    * ``new_cache(capacity, length, device)``: empty storage for ``capacity`` rows of ``length``-position canvases,
      plus the spare position slot ``length`` (where keys/values that must not be kept are written);
    * ``prefill(tokens[b, L], cache, rows[b], columns=None, **conditioning) -> logits[b, L, V]``: exactly
      ``__call__``'s logits, and every position's keys/values stored in cache rows ``rows``; with ``columns[b, C]``
      only those canvas columns' logits, ``[b, C, V]`` (the loop asks for its window alone, so a long prompt costs
      no vocabulary-wide work);
    * ``cached(tokens[b, Q], columns[b, Q], slots[b, Q], cache, outputs, **conditioning) -> logits[b, outputs, V]``:
      the query tokens stand at canvas ``columns`` of cache rows ``0..b-1``; at every layer each query's fresh
      keys/values are first written to position slot ``slots`` (``length``: not kept), then every query attends to
      the cache's positions ``0..length-1``. Logits only for the first ``outputs`` queries. Conditioning tensors
      cover the whole canvas (e.g. ``attention_mask[b, L]`` hides padded keys).
    * optional, ``peek(tokens[m, Q], columns[m, Q], cache, rows[m], **conditioning) -> logits[m, Q, V]``: ``cached``
      with ``slots = columns`` for cache rows ``rows`` (any of its rows, not only the first), except that nothing is
      stored: each query attends to the row's stored keys/values with the queries' fresh ones in place of the stored
      ones at their columns. KLASS under the dual cache uses it for the next block's distribution when a row's block
      advances (core/loop.py); without it that loop computes a two-block window every step instead.

    A denoiser whose calls hold no host synchronisation and no shape-dependent Python branching may set
    ``capturable = True`` so that ``decode.capture=auto`` replays its calls as CUDA graphs (core/capture.py).
    """

    def new_cache(self, capacity: int, length: int, device: torch.device) -> KVCache: ...

    def prefill(
        self,
        tokens: torch.Tensor,
        cache: KVCache,
        rows: torch.Tensor,
        columns: torch.Tensor | None = None,
        **conditioning: torch.Tensor,
    ) -> torch.Tensor: ...

    def cached(
        self,
        tokens: torch.Tensor,
        columns: torch.Tensor,
        slots: torch.Tensor,
        cache: KVCache,
        outputs: int,
        **conditioning: torch.Tensor,
    ) -> torch.Tensor: ...


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
