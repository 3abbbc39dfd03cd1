"""The lean LLaDA-layout transformer (models/lean.py) as a CachingDenoiser: prefix and dual KV cache, capturable.

The loop's cache (core/cache.py) asks for more than one prefix / suffix split per batch: rows in different blocks
(a split point per row), queries that are not contiguous (the window, the answer slots), and storage that never
moves, so that a CUDA graph can replay a step. The lean module's ``store`` path (``KVStore``) gives all of it:

* the cache is preallocated, per layer, as keys and values ``[capacity, kv_heads, L + 1, head_dim]``;
* in a cached call each layer first writes the queries' fresh keys/values into their slots (a read-only query, such
  as an early-exit answer slot, writes into the spare slot L, which is never read), then attends to slots 0..L-1:
  every query sees the fresh keys of the recomputed columns and the stored keys of all others.

Attending in place costs one write of the queries' keys/values per layer (on CUDA from inside the rotary kernel,
models/fused.py ``rotary_store``). The first version passed the stored canvas as the
module's ``prefix`` and hid the recomputed columns with the key mask, which copies the whole cache in every layer of
every step: on an H100 at batch 8 (LLaDA-8B shape, canvas 384) those copies took 3.7 ms of a 12.9 ms dual-cache
step's GPU time (benchmarks/results/text_throughput_b8_h100_concat_cache.json, ``kind: profile``).

Positions are canvas columns, as in LLaDA (padding hides keys, it does not renumber). Dream numbers positions from
each row's first real token and shifts its logits by one: ``CachedDream``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mdsample.core.cache import KVCache
from mdsample.models.dream import dream_positions, shift_logits
from mdsample.models.lean import KVStore, LayerKV, LeanOutput, LeanTransformer


class CachedLean:
    """``tokens[B, L]`` (+ ``attention_mask[B, L]``) -> logits ``[B, L, V]``, with the CachingDenoiser calls.

    The cache holds, per layer, keys and values as the lean module returns them (keys rotated), in its dtype.
    """

    capturable = True
    compilable = True

    def __init__(self, model: LeanTransformer, mask_id: int, vocab_size: int | None = None):
        self.model = model
        self.mask_id = mask_id
        self.vocab_size = vocab_size or model.config.vocab_size

    def use_compiled(self, on: bool) -> None:
        """Every call (whole canvas, prefill, cached) through the module's compiled layers (decode.compile)."""
        self.model.use_compiled(on)

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        positions = self._positions(attention_mask)
        return self._logits(self.model(tokens, attention_mask=attention_mask, positions=positions).logits)

    def _positions(self, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Position ids of a whole canvas (None: the canvas columns, LLaDA's numbering whatever the padding)."""
        return None

    def _logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The module's outputs as per-position logits."""
        return logits

    def new_cache(self, capacity: int, length: int, device: torch.device) -> KVCache:
        """Also grows the rotary table to every position a call of this decode can reach (the stored canvas plus at
        most two canvases of queries): the table grows on demand, and a CUDA graph captured before a growth would
        go on reading the table it replaced."""
        cfg = self.model.config
        dtype = next(self.model.parameters()).dtype
        self.model.rotary.table(3 * length + 1, device, dtype)
        shape = (capacity, cfg.num_kv_heads, length + 1, cfg.dim)
        return KVCache([torch.zeros(shape, dtype=dtype, device=device) for _ in range(2 * cfg.num_layers)], length)

    @torch.no_grad()
    def prefill(
        self,
        tokens: torch.Tensor,
        cache: KVCache,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        columns: torch.Tensor | None = None,
    ) -> torch.Tensor:
        length = tokens.shape[1]

        def write(i: int, kv: LayerKV) -> None:
            cache.tensors[2 * i][:, :, :length].index_copy_(0, rows, kv.keys)
            cache.tensors[2 * i + 1][:, :, :length].index_copy_(0, rows, kv.values)

        out = self.model(tokens, attention_mask=attention_mask, positions=self._positions(attention_mask),
                         on_kv=write, outputs=None if columns is None else self._sources(columns))
        return self._logits(out.logits) if columns is None else out.logits

    def _sources(self, columns: torch.Tensor) -> torch.Tensor:
        """The module outputs that give the logits of canvas ``columns``."""
        return columns

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
        return self._attend(tokens, columns, slots, cache, attention_mask).logits[:, :outputs]

    @torch.no_grad()
    def peek(
        self,
        tokens: torch.Tensor,
        columns: torch.Tensor,
        cache: KVCache,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Read-only queries at canvas ``columns`` of cache rows ``rows`` (CachingDenoiser's optional ``peek``)."""
        return self._attend(tokens, columns, columns, cache, attention_mask, rows=rows).logits

    def _attend(self, tokens: torch.Tensor, columns: torch.Tensor, slots: torch.Tensor, cache: KVCache,
                attention_mask: torch.Tensor | None, positions: torch.Tensor | None = None,
                rows: torch.Tensor | None = None) -> LeanOutput:
        """The lean module over the queries, writing their keys/values into their slots and attending in place.

        With ``rows`` (cache rows, one per query row) each layer attends to a copy of those rows' keys/values, made
        when the layer runs (one layer's copy at a time), so nothing is stored."""
        b = tokens.shape[0]
        layers = self.model.config.num_layers
        if rows is None:
            store = [KVStore(cache.tensors[2 * i][:b], cache.tensors[2 * i + 1][:b], slots) for i in range(layers)]
        else:
            store = _RowCopies(cache, rows, slots, layers)
        positions = columns if positions is None else positions
        return self.model(tokens, attention_mask=attention_mask, positions=positions, store=store)


class _RowCopies(Sequence):
    """Per-layer ``KVStore`` over copies of cache rows ``rows``, each made when its layer asks for it. The last copy
    is kept until another layer asks, since the module reads layer 0's shape before running layer 0."""

    def __init__(self, cache: KVCache, rows: torch.Tensor, slots: torch.Tensor, layers: int):
        self.cache, self.rows, self.slots, self.layers = cache, rows, slots, layers
        self._last: tuple[int, KVStore] | None = None

    def __len__(self) -> int:
        return self.layers

    def __getitem__(self, i: int) -> KVStore:
        if not 0 <= i < self.layers:
            raise IndexError(i)
        if self._last is None or self._last[0] != i:
            keys, values = self.cache.tensors[2 * i], self.cache.tensors[2 * i + 1]
            self._last = (i, KVStore(keys.index_select(0, self.rows), values.index_select(0, self.rows), self.slots))
        return self._last[1]


class CachedDream(CachedLean):
    """Dream's lean module (models/dream.py) as a CachingDenoiser.

    Two Dream habits change the calls: positions count from each row's first real token (``dream_positions``), and
    the logits for column c are the output at column c - 1 (``shift_logits``). So a cached call also computes each
    query's left neighbour, as a read-only query (spare slot) whose output gives the query's logits; the neighbour's
    token comes from a token row the cache keeps next to the keys/values (written at the prefill and by every cached
    query), since the loop passes the query tokens alone. Column 0 keeps its own output, as ``shift_logits`` does.
    """

    def _positions(self, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        return None if attention_mask is None else dream_positions(attention_mask)

    def _logits(self, logits: torch.Tensor) -> torch.Tensor:
        return shift_logits(logits)

    def _sources(self, columns: torch.Tensor) -> torch.Tensor:
        return (columns - 1).clamp_min(0)

    def new_cache(self, capacity: int, length: int, device: torch.device) -> KVCache:
        """The keys/values of ``CachedLean`` plus the canvas tokens ``[capacity, L + 1]`` (slot L: spare), last."""
        cache = super().new_cache(capacity, length, device)
        cache.tensors.append(torch.zeros(capacity, length + 1, dtype=torch.long, device=device))
        return cache

    @torch.no_grad()
    def prefill(
        self,
        tokens: torch.Tensor,
        cache: KVCache,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        columns: torch.Tensor | None = None,
    ) -> torch.Tensor:
        logits = super().prefill(tokens, cache, rows, attention_mask=attention_mask, columns=columns)
        cache.tensors[-1][:, : tokens.shape[1]].index_copy_(0, rows, tokens)
        return logits

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
        canvas = cache.tensors[-1][: tokens.shape[0]]
        canvas.scatter_(1, slots, tokens)
        return self._shifted(tokens, columns, slots, cache, outputs, canvas, attention_mask)

    @torch.no_grad()
    def peek(
        self,
        tokens: torch.Tensor,
        columns: torch.Tensor,
        cache: KVCache,
        rows: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Read-only queries: the left neighbours' tokens come from a copy of the rows' token row."""
        canvas = cache.tensors[-1].index_select(0, rows).scatter_(1, columns, tokens)
        return self._shifted(tokens, columns, columns, cache, columns.shape[1], canvas, attention_mask, rows)

    def _shifted(self, tokens: torch.Tensor, columns: torch.Tensor, slots: torch.Tensor, cache: KVCache,
                 outputs: int, canvas: torch.Tensor, attention_mask: torch.Tensor | None,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
        """The queries' logits from their left neighbours' outputs (read-only queries ahead of them)."""
        left = (columns[:, :outputs] - 1).clamp_min(0)
        all_columns = torch.cat([left, columns], dim=1)
        all_slots = torch.cat([torch.full_like(left, cache.length), slots], dim=1)
        positions = all_columns if attention_mask is None else dream_positions(attention_mask).gather(1, all_columns)
        out = self._attend(torch.cat([canvas.gather(1, left), tokens], dim=1), all_columns, all_slots, cache,
                           attention_mask, positions, rows)
        return out.logits[:, :outputs]
