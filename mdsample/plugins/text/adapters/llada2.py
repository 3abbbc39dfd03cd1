"""LLaDA2.0 / 2.1 checkpoints (inclusionAI/LLaDA2.x-mini, -flash) as block-diffusion text models.

LLaDA2 is a masked (absorbing) block-diffusion MoE: canvases of ``block_length`` tokens tile the sequence from
position 0, so the first canvas may start inside the prompt (those columns are frozen). Each step the model reads
the prompt, the finished canvases and the current canvas together, as diffusers' LLaDA2Pipeline calls it (2-D
attention mask, column positions), which is what makes mdsample's tokens equal the pipeline's. LLaDA2.1's post-mask
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


class LLaDA2Blocks:
    """A LLaDA2 model as a BlockDenoiser (core/blocks.py): absorbing canvases aligned to absolute positions."""

    corruption = "absorbing"
    aligned = True
    spread = "block"
    resizable = True

    def __init__(self, model: LLaDA2, mask_id: int, vocab_size: int, *, canvas_length: int = BLOCK_LENGTH,
                 editing: Editing | None = None, stop_ids: tuple[int, ...] = ()):
        self.model, self.mask_id, self.vocab_size = model, mask_id, vocab_size
        self.canvas_length, self.editing, self.stop_ids = canvas_length, editing, stop_ids
        self.canvas = LLaDA2Canvas(model, mask_id, vocab_size)

    def open(self, context: torch.Tensor, attention_mask: torch.Tensor) -> tuple[LLaDA2Canvas, dict]:
        return self.canvas, {"context": context, "context_mask": attention_mask}


def load(model_dir: Path, config: dict[str, Any], *, trust_remote_code: bool, device: torch.device,
         dtype: torch.dtype, impl: str, editing: Editing | None = None) -> TextModel:
    """A LLaDA2 checkpoint as a TextModel whose denoiser is a LLaDA2Blocks (always the native module)."""
    if impl != "native":
        raise ConfigError("LLaDA2 checkpoints run in mdsample's native module (models/llada2.py), not their own code: "
                          "use domain.impl=native")
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    mask_id = next((m for m in (config.get("mask_token_id"), tokenizer.mask_token_id) if m is not None), MASK_ID)
    model = load_llada2(model_dir, config, device, dtype)
    stops = stop_ids(tokenizer, config)
    return TextModel(
        denoiser=LLaDA2Blocks(model, mask_id, model.cfg.vocab_size, editing=editing, stop_ids=stops),
        tokenizer=tokenizer,
        mask_id=mask_id,
        pad_id=pad_id(tokenizer, config, mask_id, stops),
        stop_ids=stops,
        family="llada2",
        max_length=config.get("max_position_embeddings"),
    )
