"""LLaDA checkpoints (GSAI-ML/LLaDA-8B-Base / -Instruct and their fine-tunes) as text denoisers.

``impl="native"`` (default) loads the weights into mdsample's lean module (models/llada.py): no remote code, faster,
and served by ``CachedLean`` (models/cached.py), so the loop's prefix / dual KV cache and CUDA-graph capture apply.
``impl="remote"`` runs the checkpoint's own ``modeling_llada.py`` through ``AutoModel`` and so needs
``trust_remote_code``. Both take the canvas attention mask as is: LLaDA hides padded keys and keeps column positions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdsample.models.cached import CachedLean
from mdsample.models.llada import MASK_ID, load_llada
from mdsample.plugins.text.adapters.remote import IMPL_SWITCH, RemoteDenoiser, load_remote_model, require_trust
from mdsample.plugins.text.adapters.text_model import TextModel
from mdsample.plugins.text.adapters.tokens import load_tokenizer, pad_id, stop_ids


class RemoteLLaDADenoiser(RemoteDenoiser):
    """LLaDA's own ``LLaDAModelLM``: ``tokens[B, L]`` (+ ``attention_mask[B, L]``) -> logits ``[B, L, V]``."""

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        # use_cache must be explicit: LLaDA's code reads config.use_cache, which transformers 5 configs lack
        return self.model(input_ids=tokens, attention_mask=attention_mask, use_cache=False).logits


def load(model_dir: Path, config: dict[str, Any], *, trust_remote_code: bool, device: torch.device,
         dtype: torch.dtype, impl: str) -> TextModel:
    """A LLaDA checkpoint as a TextModel; ``impl`` is "native" or "remote" (checked by the caller)."""
    mask_id = MASK_ID if config.get("mask_token_id") is None else config["mask_token_id"]
    vocab_size = config.get("embedding_size") or config["vocab_size"]
    if impl == "remote":
        require_trust(trust_remote_code, f"LLaDA checkpoint {model_dir} with {IMPL_SWITCH}=remote",
                      f"use {IMPL_SWITCH}=native")
        denoiser = RemoteLLaDADenoiser(load_remote_model(model_dir, dtype=dtype, device=device), mask_id, vocab_size)
    else:
        denoiser = CachedLean(load_llada(model_dir, config, device, dtype), mask_id, vocab_size)
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    stops = stop_ids(tokenizer, config)
    return TextModel(
        denoiser=denoiser,
        tokenizer=tokenizer,
        mask_id=mask_id,
        pad_id=pad_id(tokenizer, config, mask_id, stops),
        stop_ids=stops,
        family="llada",
        max_length=config.get("max_sequence_length"),
    )
