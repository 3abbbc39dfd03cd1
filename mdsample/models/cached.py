"""The lean LLaDA-layout transformer (models/lean.py) as a CachingDenoiser: prefix and dual KV cache, capturable.

The loop's cache (core/cache.py) asks for more than one prefix / suffix split per batch: rows in different blocks
(a split point per row), queries that are not contiguous (the window, the answer slots), and storage that never
moves, so that a CUDA graph can replay a step. This wrapper gets all of it from the lean module's public forward
alone (``prefix`` keys/values, a key mask, explicit positions, ``return_kv``), so that it keeps working whatever the
module does inside a layer:

* the cache is preallocated, per layer, as keys and values ``[capacity, kv_heads, L + 1, head_dim]``;
* a cached call passes the whole stored canvas as the prefix and the queries as the tokens, and hides with the key
  mask the stored entries of the columns the queries recompute (and the queries' own keys when they are read-only),
  so every query sees the fresh keys of the recomputed columns and the stored keys of all others;
* afterwards the queries' fresh keys/values are scattered into the cache at their slots (slot L: not kept).

The price of using the public forward is one concatenation of the stored keys/values per layer and call (a copy of
the cache: about 1/20 of the weight reads of an LLaDA-8B step at batch 8, canvas 384) and logits for every query
(the prefix mode's positions after the window need only keys/values). A layer-level path that scatters into the
cache and attends to it in place would remove both.

Positions are canvas columns, as in LLaDA (padding hides keys, it does not renumber). Dream numbers positions from
each row's first real token and shifts its logits by one; it is not covered here.
"""

from __future__ import annotations

import torch

from mdsample.core.cache import KVCache
from mdsample.models.lean import LayerKV, LeanTransformer


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
        length = cache.length
        stored = [LayerKV(cache.tensors[i][:b, :, :length], cache.tensors[i + 1][:b, :, :length])
                  for i in range(0, len(cache.tensors), 2)]
        recomputed = torch.zeros(b, length + 1, dtype=torch.bool, device=tokens.device).scatter_(1, slots, True)
        visible = ~recomputed[:, :length]
        if attention_mask is not None:
            visible &= attention_mask.bool()
        keys_mask = torch.cat([visible, slots < length], dim=1)
        out = self.model(tokens, attention_mask=keys_mask, positions=columns, prefix=stored, return_kv=True)
        where = slots[:, None, :, None].expand(b, self.model.config.num_kv_heads, q, self.model.config.dim)
        for i, kv in enumerate(out.kv):
            cache.tensors[2 * i][:b].scatter_(2, where, kv.keys)
            cache.tensors[2 * i + 1][:b].scatter_(2, where, kv.values)
        return out.logits[:, :outputs]
