"""The lean LLaDA-layout transformer (models/lean.py) as a CachingDenoiser: prefix and dual KV cache, capturable.

The loop's cache (core/cache.py) asks for more than one prefix / suffix split per batch: rows in different blocks
(a split point per row), queries that are not contiguous (the window, the answer slots), and storage that never
moves, so that a CUDA graph can replay a step. The lean module's ``store`` path (``KVStore``) gives all of it:

* the cache is preallocated, per layer, as keys and values ``[capacity, kv_heads, L + 1, head_dim]``;
* in a cached call each layer first writes the queries' fresh keys/values into their slots (a read-only query, such
  as an early-exit answer slot, writes into the spare slot L, which is never read), then attends to slots 0..L-1:
  every query sees the fresh keys of the recomputed columns and the stored keys of all others.

Attending in place costs one scatter of the queries per layer. The first version passed the stored canvas as the
module's ``prefix`` and hid the recomputed columns with the key mask, which copies the whole cache in every layer of
every step: on an H100 at batch 8 (LLaDA-8B shape, canvas 384) those copies took 3.7 ms of a 12.9 ms dual-cache
step's GPU time (benchmarks/results/text_throughput_b8_h100_concat_cache.json, ``kind: profile``).

Positions are canvas columns, as in LLaDA (padding hides keys, it does not renumber). Dream numbers positions from
each row's first real token and shifts its logits by one; it is not covered here.
"""

from __future__ import annotations

import torch

from mdsample.core.cache import KVCache
from mdsample.models.lean import KVStore, LeanTransformer


class CachedLean:
    """``tokens[B, L]`` (+ ``attention_mask[B, L]``) -> logits ``[B, L, V]``, with the CachingDenoiser calls.

    The cache holds, per layer, keys and values as the lean module returns them (keys rotated), in its dtype.
    """

    capturable = True

    def __init__(self, model: LeanTransformer, mask_id: int, vocab_size: int | None = None):
        self.model = model
        self.mask_id = mask_id
        self.vocab_size = vocab_size or model.config.vocab_size

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens, attention_mask=attention_mask).logits

    def new_cache(self, capacity: int, length: int, device: torch.device) -> KVCache:
        """Also grows the rotary table to every position a call of this decode can reach (the stored canvas plus at
        most two canvases of queries): the table grows on demand, and a CUDA graph captured before a growth would
        go on reading the table it replaced."""
        cfg = self.model.config
        self.model.rotary(torch.zeros(1, 1, dtype=torch.long, device=device), 3 * length + 1)
        dtype = next(self.model.parameters()).dtype
        shape = (capacity, cfg.num_kv_heads, length + 1, cfg.dim)
        return KVCache([torch.zeros(shape, dtype=dtype, device=device) for _ in range(2 * cfg.num_layers)], length)

    @torch.no_grad()
    def prefill(
        self, tokens: torch.Tensor, cache: KVCache, rows: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.model(tokens, attention_mask=attention_mask, return_kv=True)
        length = tokens.shape[1]
        for i, kv in enumerate(out.kv):
            cache.tensors[2 * i][:, :, :length].index_copy_(0, rows, kv.keys)
            cache.tensors[2 * i + 1][:, :, :length].index_copy_(0, rows, kv.values)
        return out.logits

    @torch.no_grad()
    def cached(
        self,
        tokens: torch.Tensor,
        columns: torch.Tensor,
        slots: torch.Tensor,
        cache: KVCache,
        outputs: int,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, q = tokens.shape
        cfg = self.model.config
        where = slots[:, None, :, None].expand(b, cfg.num_kv_heads, q, cfg.dim)
        store = [KVStore(cache.tensors[i][:b], cache.tensors[i + 1][:b], where)
                 for i in range(0, len(cache.tensors), 2)]
        out = self.model(tokens, attention_mask=attention_mask, positions=columns, store=store)
        return out.logits[:, :outputs]
