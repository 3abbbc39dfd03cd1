"""LLaDA2.0 / 2.1 checkpoints (inclusionAI/LLaDA2.x-mini, -flash) as block-diffusion text models.

LLaDA2 is a masked (absorbing) block-diffusion MoE: canvases of ``block_length`` tokens tile the sequence from
position 0, so the first canvas may start inside the prompt (those columns are frozen). The context (prompt and
finished canvases) is read in one of two ways (CONTEXTS):

* "cached" (default), as LLaDA2's own generate: the context is read block-causally (a block sees itself and the
  blocks before it) once, into a KV cache, and each step runs the canvas alone against it;
* "full", as diffusers' LLaDA2Pipeline calls the model: every step re-reads the context and the canvas together with
  a 2-D attention mask (every position sees every other); this is what makes mdsample's tokens equal the pipeline's.

LLaDA2.1's post-mask
editing (``editing_threshold``, ``max_post_steps``) is the loop's Editing option, usable with every rule; the
count schedule spreads each canvas's full length over its steps, as BlockRefinementScheduler does.

The weights run in mdsample's native module (models/llada2.py), never through remote code: see its docstring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdsample.core.loop import Editing
from mdsample.errors import ConfigError
from mdsample.models.llada2 import MASK_ID, LLaDA2, load_llada2
from mdsample.plugins.text.adapters.text_model import TextModel
from mdsample.plugins.text.adapters.tokens import load_tokenizer, pad_id, stop_ids

BLOCK_LENGTH = 32
"""LLaDA2's released generation setting (and diffusers' BlockRefinementScheduler default)."""

CONTEXTS = ("cached", "full")


class LLaDA2Canvas:
    """The Denoiser of one canvas: ``canvas[b, C]`` with its rows' ``context[b, P]`` / ``context_mask[b, P]``."""

    def __init__(self, model: LLaDA2, mask_id: int, vocab_size: int):
        self.model, self.mask_id, self.vocab_size = model, mask_id, vocab_size

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([context, tokens], dim=1)
        mask = torch.cat([context_mask.long(), torch.ones_like(tokens)], dim=1)
        positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0).expand_as(x)
        return self.model(x, attention_mask=mask, position_ids=positions).logits[:, context.shape[1] :]


class CachedCanvas:
    """The Denoiser of one canvas in "cached" mode: ``canvas[b, C]`` (rows ``rows`` of the batch) against the cached
    keys/values of the context, which it sees whole (padding hidden), at column positions."""

    def __init__(self, blocks: LLaDA2Blocks):
        self.blocks, self.mask_id, self.vocab_size = blocks, blocks.mask_id, blocks.vocab_size

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        blocks = self.blocks
        b, size = tokens.shape
        full = rows.numel() == blocks.context_mask.shape[0]
        kv = blocks.kv if full or blocks.kv is None else [(k[rows], v[rows]) for k, v in blocks.kv]
        keys = torch.cat([blocks.context_mask[rows].bool(), torch.ones_like(tokens, dtype=torch.bool)], dim=1)
        start = blocks.cached
        positions = torch.arange(start, start + size, device=tokens.device).unsqueeze(0).expand(b, size)
        mask = keys[:, None, None, :].expand(b, 1, size, keys.shape[1])
        return blocks.model(tokens, attention_mask=mask, position_ids=positions, context=kv).logits


class LLaDA2Blocks:
    """A LLaDA2 model as a BlockDenoiser (core/blocks.py): absorbing canvases aligned to absolute positions, the
    context read "cached" or "full" (module docstring)."""

    corruption = "absorbing"
    aligned = True
    spread = "block"
    resizable = True

    def __init__(self, model: LLaDA2, mask_id: int, vocab_size: int, *, canvas_length: int = BLOCK_LENGTH,
                 editing: Editing | None = None, stop_ids: tuple[int, ...] = (), context: str = "cached"):
        if context not in CONTEXTS:
            raise ConfigError(f"LLaDA2 context mode {context!r} is unknown; choose one of: {', '.join(CONTEXTS)}")
        self.model, self.mask_id, self.vocab_size = model, mask_id, vocab_size
        self.canvas_length, self.editing, self.stop_ids, self.context = canvas_length, editing, stop_ids, context
        self.canvas = LLaDA2Canvas(model, mask_id, vocab_size)
        self.kv: list | None = None
        self.cached = 0
        self.context_mask = torch.zeros(0, 0)

    @torch.no_grad()
    def open(self, context: torch.Tensor, attention_mask: torch.Tensor,
             fresh: bool) -> tuple[LLaDA2Canvas | CachedCanvas, dict]:
        if self.context == "full":
            return self.canvas, {"context": context, "context_mask": attention_mask}
        batch, length = context.shape
        if fresh:
            self.kv, self.cached = None, 0
        if length > self.cached:
            self._extend(context, attention_mask.bool())
        self.context_mask = attention_mask
        return CachedCanvas(self), {"rows": torch.arange(batch, device=context.device)}

    def _extend(self, context: torch.Tensor, valid: torch.Tensor) -> None:
        """Read the context's new positions block-causally (blocks of ``canvas_length`` from position 0) against
        the cached ones and append their keys/values. Every position also sees itself, so that a block of padding
        (which sees only padding) stays finite."""
        start, length = self.cached, context.shape[1]
        device = context.device
        queries = torch.arange(start, length, device=device)
        keys = torch.arange(length, device=device)
        blocks = (keys // self.canvas_length).unsqueeze(0) <= (queries // self.canvas_length).unsqueeze(1)
        mask = (blocks & valid[:, None, :]) | (keys.unsqueeze(0) == queries.unsqueeze(1))
        positions = queries.unsqueeze(0).expand(context.shape[0], -1)
        keep: list = []
        self.model(context[:, start:], attention_mask=mask.unsqueeze(1), position_ids=positions, context=self.kv,
                   keep=keep)
        self.kv = keep if self.kv is None else [(torch.cat([k0, k1], dim=2), torch.cat([v0, v1], dim=2))
                                                for (k0, v0), (k1, v1) in zip(self.kv, keep, strict=True)]
        self.cached = length


def load(model_dir: Path, config: dict[str, Any], *, trust_remote_code: bool, device: torch.device,
         dtype: torch.dtype, impl: str, editing: Editing | None = None, context: str = "cached") -> TextModel:
    """A LLaDA2 checkpoint as a TextModel whose denoiser is a LLaDA2Blocks (always the native module)."""
    if impl != "native":
        raise ConfigError("LLaDA2 checkpoints run in mdsample's native module (models/llada2.py), not their own code: "
                          "use domain.impl=native")
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    mask_id = next((m for m in (config.get("mask_token_id"), tokenizer.mask_token_id) if m is not None), MASK_ID)
    model = load_llada2(model_dir, config, device, dtype)
    stops = stop_ids(tokenizer, config)
    return TextModel(
        denoiser=LLaDA2Blocks(model, mask_id, model.cfg.vocab_size, editing=editing, stop_ids=stops,
                              context=context),
        tokenizer=tokenizer,
        mask_id=mask_id,
        pad_id=pad_id(tokenizer, config, mask_id, stops),
        stop_ids=stops,
        family="llada2",
        max_length=config.get("max_position_embeddings"),
    )
