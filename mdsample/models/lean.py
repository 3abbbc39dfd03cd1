"""A lean bidirectional transformer that LLaDA and Dream checkpoints load into, without their remote code.

Both are LLaMA-shaped pre-norm decoders run without a causal mask: RMSNorm, rotary positions, grouped-query SDPA
attention and a SwiGLU MLP. Written as one small module rather than on transformers' Llama / Qwen2 classes because
(1) per step it should cost what the GEMMs cost: the q/k/v and gate/up projections are fused into one GEMM each,
rotary embeddings, each norm with its residual add and SwiGLU's product are one kernel each on CUDA (models/fused.py),
and no mask-building machinery runs per call (at batch 1 the step is bound by kernel launches, so every elementwise
kernel saved per layer counts);
(2) a later KV cache (Fast-dLLM's prefix / dual cache) needs attention over [prefix keys, fresh keys, suffix keys],
which is two concatenations here but not an API the causal-LM cache classes offer; (3) LLaDA is not in transformers
at all, so one shared module is less code than one LLaDA module plus a patched Qwen2.

Rotary layout: checkpoints rotate the two halves of each head ("rotate-half"); here the q and k rows of the fused
qkv weight are permuted so that each head's dimension pairs (j, j + dim/2) are adjacent, which makes the rotation
one pass over adjacent pairs (fused.rotary) instead of halves to split and concatenate. q.k products are unchanged
by permuting q and k alike, so logits are the same; only the cached keys (``LayerKV``) are in this internal order.
``fuse_qkv`` builds that layout.

Checkpoint names are mapped by the family modules (models/llada.py, models/dream.py); this module only knows its own
names, listed by ``LeanTransformer.state_dict()``.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from mdsample.errors import ConfigError, MissingFileError
from mdsample.models import blas, fused
from mdsample.models.fused import rotary_table

_RECOMPILE_LIMIT = 64


@dataclass(frozen=True)
class LeanConfig:
    """Shape. ``vocab_size`` is the number of embedding rows (= logits width). Rotary embeddings are always applied in
    float32 and cast back (LLaDA's reference does the same; Qwen2 / Dream round cos / sin to the model dtype first).
    """

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    rope_theta: float
    norm_eps: float
    head_dim: int | None = None
    qkv_bias: bool = False
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"{self.num_heads} attention heads are not a multiple of {self.num_kv_heads} kv heads")
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ConfigError(f"hidden size {self.hidden_size} is not a multiple of {self.num_heads} heads")

    @property
    def dim(self) -> int:
        """Per-head dimension."""
        return self.head_dim or self.hidden_size // self.num_heads


class LayerKV(NamedTuple):
    """One layer's keys and values ``[B, kv_heads, T, head_dim]``; keys rotated, in the pair-interleaved layout."""

    keys: torch.Tensor
    values: torch.Tensor


class KVStore(NamedTuple):
    """One layer's key/value storage ``[B, kv_heads, L + 1, head_dim]`` that a call attends to in place.

    ``slots[B, Q]`` (the queries' storage slots; slot L is a spare that is never read): the call first writes its
    queries' fresh keys/values there (from the rotary kernel, fused.rotary_store), then attends to slots 0..L-1. So
    a cached step writes only its own keys/values instead of copying the whole stored canvas, and the storage never
    moves (a captured CUDA graph reads and writes it in place). A layer that ran over a store returns the storage as
    its keys/values.
    """

    keys: torch.Tensor
    values: torch.Tensor
    slots: torch.Tensor


class LeanOutput(NamedTuple):
    """Logits ``[B, L, V]`` and, when asked for, each layer's keys/values of the tokens computed in this call."""

    logits: torch.Tensor
    kv: list[LayerKV] | None = None


class Rotary:
    """cos / sin tables of the rotary angles (fused.rotary_table), grown on demand and kept per device and precision.

    Angles are computed in float32 as the reference implementations do (float64 for a float64 model). The tables
    are not weights, so they live outside the module's state; each call's layers read them at its positions.
    A table that a longer one replaces stays alive: a CUDA graph kept across decodes (core/capture.py KeptGraphs)
    may read it later, and its rows equal the new table's.
    """

    def __init__(self, dim: int, theta: float):
        self.dim, self.theta = dim, theta
        self._tables: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
        self._replaced: list[torch.Tensor] = []

    def table(self, limit: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """A table ``[T >= limit, dim]`` in the rotary precision of a ``dtype`` model (float32, or float64).

        ``limit`` is known on the host (the canvas length), so growing the table never waits for the device.
        """
        real = torch.promote_types(dtype, torch.float32)
        table = self._tables.get((device, real))
        if table is None or table.shape[0] < limit:
            if table is not None:
                self._replaced.append(table)
            length = max(limit, 2 * (0 if table is None else table.shape[0]), 512)
            table = self._tables[(device, real)] = rotary_table(self.dim, self.theta, length, device, real)
        return table


def fuse_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dim: int) -> torch.Tensor:
    """Stack q, k, v projection weights (or biases) of a rotate-half checkpoint into the lean qkv layout.

    Within each q and k head, output rows (j, j + dim/2) become adjacent (rows 2j, 2j + 1); v is unchanged.
    """

    def interleave(w: torch.Tensor) -> torch.Tensor:
        heads = w.shape[0] // dim
        return w.reshape(heads, 2, dim // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)

    return torch.cat([interleave(q), interleave(k), v])


class Attention(nn.Module):
    """Bidirectional grouped-query attention over [prefix keys, own keys, suffix keys] with one fused qkv GEMM."""

    def __init__(self, cfg: LeanConfig):
        super().__init__()
        self.heads, self.kv_heads, self.dim = cfg.num_heads, cfg.num_kv_heads, cfg.dim
        self.qkv = nn.Linear(cfg.hidden_size, (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.dim, bias=cfg.qkv_bias)
        self.out = nn.Linear(cfg.num_heads * cfg.dim, cfg.hidden_size, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        table: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None,
        prefix: LayerKV | None = None,
        suffix: LayerKV | None = None,
        store: KVStore | None = None,
    ) -> tuple[torch.Tensor, LayerKV]:
        """``table``: the rotary table (``Rotary.table``) read at ``positions[B or 1, L]``; ``mask``: additive, over
        keys ``[B, 1, 1, P + L + S]`` (with ``store``: over its L slots). Returns the output and this call's
        keys/values (with ``store``: the storage, which holds them at their slots)."""
        b, length, _ = x.shape
        qkv = self.qkv(x).view(b, length, self.heads + 2 * self.kv_heads, self.dim)
        if store is not None:
            q = fused.rotary_store(qkv, table, positions, self.heads, store.keys, store.values, store.slots)
            q = q.transpose(1, 2)
            own = LayerKV(store.keys, store.values)
            stored = store.keys.shape[2] - 1
            keys, values = store.keys[:, :, :stored], store.values[:, :, :stored]
        else:
            qk = fused.rotary(qkv[:, :, : self.heads + self.kv_heads], table, positions)
            q = qk[:, :, : self.heads].transpose(1, 2)
            own = LayerKV(qk[:, :, self.heads :].transpose(1, 2),
                          qkv[:, :, self.heads + self.kv_heads :].transpose(1, 2))
            keys, values = own
        if prefix is not None:
            keys, values = torch.cat([prefix.keys, keys], dim=2), torch.cat([prefix.values, values], dim=2)
        if suffix is not None:
            keys, values = torch.cat([keys, suffix.keys], dim=2), torch.cat([values, suffix.values], dim=2)
        a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=self.kv_heads != self.heads)
        return self.out(a.transpose(1, 2).reshape(b, length, self.heads * self.dim)), own


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x)) with gate and up fused into one GEMM (gate first) and the product one kernel."""

    def __init__(self, cfg: LeanConfig):
        super().__init__()
        self.gate_up = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(fused.swiglu(self.gate_up(x)))


class Block(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then + mlp(norm(x)).

    Each residual add runs inside the kernel of the norm that follows it (``fused.add_rms_norm``): a block takes the
    stream before the previous block's MLP output is added and returns its own MLP output still to be added. The
    RMSNorm submodules hold the norms' weights under the names checkpoints map to.
    """

    def __init__(self, cfg: LeanConfig):
        super().__init__()
        self.eps = cfg.norm_eps
        self.attn_norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.mlp = SwiGLU(cfg)

    def forward(
        self,
        x: torch.Tensor,
        update: torch.Tensor | None,
        table: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None,
        prefix: LayerKV | None = None,
        suffix: LayerKV | None = None,
        store: KVStore | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, LayerKV]:
        """(stream after attention, MLP output to add, keys/values) of stream ``x`` + ``update`` (None: nothing)."""
        h, x = fused.add_rms_norm(x, update, self.attn_norm.weight, self.eps)
        a, kv = self.attn(h, table, positions, mask, prefix, suffix, store)
        h, x = fused.add_rms_norm(x, a, self.mlp_norm.weight, self.eps)
        return x, self.mlp(h), kv


@functools.cache
def compiled_block() -> Callable[..., tuple[torch.Tensor, torch.Tensor, LayerKV]]:
    """``Block.forward`` through torch.compile: static shapes, one graph (``fullgraph``), inductor's default mode,
    which makes no CUDA graphs of its own, so a captured step (core/capture.py) replays the compiled kernels.

    Why the block and not the whole forward (regional compilation): every block of every LeanTransformer runs the
    same code on the same shapes and dynamo treats a module's weights as inputs, so all blocks share two graphs per
    input shape (the first block, which has no update to add, and the rest): compilation costs two blocks, not 32,
    and no fusion is lost, since each block's last residual add already runs inside the next block's first norm.
    The embedding, the final norm and the head stay eager (three kernels). Each new input shape (batch bucket,
    canvas or window length, call kind) compiles once; dynamo's recompile limit is raised so that a decode's few
    dozen shapes never fall back to eager.
    """
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, _RECOMPILE_LIMIT)
    return torch.compile(Block.forward, dynamic=False, fullgraph=True)


class LeanTransformer(nn.Module):
    """``tokens[B, L] -> LeanOutput(logits[B, L, V])``, every position attending to every (unpadded) position.

    ``use_compiled(True)`` runs the blocks through ``compiled_block`` (``decode.compile``).
    """

    def __init__(self, cfg: LeanConfig):
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.rotary = Rotary(cfg.dim, cfg.rope_theta)
        self.compiled = False

    def use_compiled(self, on: bool) -> None:
        """Run the blocks compiled (``compiled_block``) or eagerly. Where compilation fails the module warns and
        runs eagerly from then on, as a failed CUDA-graph capture does."""
        self.compiled = on

    def forward(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        prefix: list[LayerKV] | None = None,
        suffix: list[LayerKV] | None = None,
        return_kv: bool = False,
        store: list[KVStore] | None = None,
        outputs: torch.Tensor | None = None,
        on_kv: Callable[[int, LayerKV], None] | None = None,
    ) -> LeanOutput:
        """Logits of ``tokens``; with ``prefix`` / ``suffix`` (per-layer keys/values of the positions before and
        after them, e.g. from an earlier ``return_kv=True`` call) only ``tokens`` are computed. ``on_kv(i, kv)``
        receives layer i's keys/values as soon as the layer has run, instead of the output keeping every layer's: a
        cache refresh copies them into its cache at once, so at most one layer's are held beside the cache (at batch
        64 and prompt 1024 LLaDA-8B's 32 layers hold 80 GiB of keys/values, the cache's own size again). With ``store``
        (per-layer storage, see ``KVStore``; not together with ``prefix`` / ``suffix``) the tokens write their
        keys/values into it and attend to its L slots, ``attention_mask[B, L]`` covering those. ``outputs[B, C]``
        (token indices) limits the final norm and the LM head to those positions, ``logits[B, C, V]``: a cache
        refresh over a long prompt needs logits for the canvas alone, and the head over every prompt position
        costs a vocabulary-wide GEMM and a [B, L, V] tensor (at batch 64 and prompt 1024, tens of GB).

        ``attention_mask[B, P + L + S]`` (1 = attend) covers all keys in that order; padded keys are ignored (every
        query must keep at least one key).
        ``positions[B or 1, L]`` (each below P + L + S) default to ``P .. P + L - 1`` (P = prefix length).
        """
        args = (tokens, attention_mask, positions, prefix, suffix, return_kv, store, outputs, on_kv)
        with blas.preferred(tokens.device):
            if self.compiled:
                try:
                    return self._forward(*args)
                except torch._dynamo.exc.TorchDynamoException as exc:  # compilation failed, not the computation
                    warnings.warn(f"torch.compile failed, running the module eagerly: "
                                  f"{str(exc).splitlines()[0][:200]}", RuntimeWarning, stacklevel=2)
                    self.compiled = False
            return self._forward(*args)

    def _forward(
        self,
        tokens: torch.Tensor,
        attention_mask: torch.Tensor | None,
        positions: torch.Tensor | None,
        prefix: list[LayerKV] | None,
        suffix: list[LayerKV] | None,
        return_kv: bool,
        store: list[KVStore] | None,
        outputs: torch.Tensor | None,
        on_kv: Callable[[int, LayerKV], None] | None,
    ) -> LeanOutput:
        start = 0 if prefix is None else prefix[0].keys.shape[2]
        limit = start + tokens.shape[1] + (0 if suffix is None else suffix[0].keys.shape[2])
        if store is not None:
            limit = max(limit, store[0].keys.shape[2] - 1)
        if positions is None:
            positions = torch.arange(start, start + tokens.shape[1], device=tokens.device).unsqueeze(0)
        x = self.embed(tokens)
        table = self.rotary.table(limit, tokens.device, x.dtype)
        mask = None
        if attention_mask is not None:  # additive, built once for all layers
            hidden = ~attention_mask.bool()[:, None, None, :]
            mask = torch.zeros(hidden.shape, dtype=x.dtype, device=x.device).masked_fill_(hidden, float("-inf"))
        block = compiled_block() if self.compiled else None
        kvs = []
        update = None
        for i, layer in enumerate(self.layers):
            before, after = (None if prefix is None else prefix[i]), (None if suffix is None else suffix[i])
            args = (x, update, table, positions, mask, before, after, None if store is None else store[i])
            x, update, kv = layer(*args) if block is None else block(layer, *args)
            if on_kv is not None:
                on_kv(i, kv)
            elif return_kv:
                kvs.append(kv)
        if outputs is not None:
            rows = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
            x = x[rows, outputs]
            update = None if update is None else update[rows, outputs]
        x, _ = fused.add_rms_norm(x, update, self.norm.weight, self.config.norm_eps)
        logits = F.linear(x, self.embed.weight) if self.head is None else self.head(x)
        return LeanOutput(logits, kvs if return_kv else None)


def load_safetensors(model_dir: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a ``save_pretrained`` directory (one ``model.safetensors`` or an indexed set of shards)."""
    from safetensors.torch import load_file

    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    missing = [f for f in files if not (model_dir / f).is_file()]
    if missing:
        raise MissingFileError(f"{model_dir} lacks the safetensors weights {missing[:3]} (only safetensors load)")
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        tensors.update(load_file(str(model_dir / name), device=str(device)))
    return tensors


def build_lean(cfg: LeanConfig, weights: dict[str, torch.Tensor], device: torch.device | str,
               dtype: torch.dtype) -> LeanTransformer:
    """A LeanTransformer holding exactly ``weights`` (lean names), cast to ``dtype`` on ``device``, in eval mode.

    The module is built on the meta device and the tensors are assigned, so a checkpoint is never held twice.
    """
    with torch.device("meta"):
        model = LeanTransformer(cfg)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or unexpected:
        raise ConfigError(f"checkpoint does not match the model shape: missing {missing[:4]}, unexpected "
                          f"{unexpected[:4]} ({len(missing)} / {len(unexpected)} in all)")
    for name, tensor in model.state_dict().items():
        if weights[name].shape != tensor.shape:
            raise ConfigError(f"checkpoint tensor {name} has shape {tuple(weights[name].shape)}, the config says "
                              f"{tuple(tensor.shape)}")
    model.load_state_dict({k: v.to(device=device, dtype=dtype) for k, v in weights.items()}, assign=True)
    return model.eval()
