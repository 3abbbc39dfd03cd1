"""Dream checkpoints (Dream-org/Dream-v0-Base-7B / -Instruct-7B and fine-tunes) as text denoisers.

Dream's logits are shifted by one position (the output at i - 1 predicts position i); the denoiser shifts them back
so the core sees ordinary per-position logits. With padding, Dream numbers positions from each row's first real
token and hides padded keys. ``impl="native"`` (default) runs the lean module (models/dream.py) behind
``CachedDream`` (KV caches and CUDA-graph capture apply) and reads Dream's Qwen2 BPE files with transformers' Qwen2
tokenizer when its own tokenizer class would need remote code; ``impl="remote"`` runs the checkpoint's
``modeling_dream.py`` (needs ``trust_remote_code``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2Tokenizer

from mdsample.errors import ConfigError
from mdsample.models.cached import CachedDream
from mdsample.models.dream import dream_positions, load_dream, shift_logits
from mdsample.plugins.text.adapters.remote import IMPL_SWITCH, RemoteDenoiser, load_remote_model, require_trust
from mdsample.plugins.text.adapters.text_model import TextModel
from mdsample.plugins.text.adapters.tokens import load_tokenizer, pad_id, stop_ids


class RemoteDreamDenoiser(RemoteDenoiser):
    """A checkpoint's own ``modeling_dream.py``: ``tokens[B, L]`` (+ ``attention_mask[B, L]``) -> per-position
    logits ``[B, L, V]`` (shift undone)."""

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            return shift_logits(self.model(tokens, "full", None).logits)
        # Dream's code takes a [B, 1, L, L] mask; hiding padded keys from every query equals its own mask on real rows
        keys = attention_mask.bool()[:, None, None, :].expand(-1, 1, tokens.shape[1], -1)
        return shift_logits(self.model(tokens, keys, dream_positions(attention_mask)).logits)


def load(model_dir: Path, config: dict[str, Any], *, trust_remote_code: bool, device: torch.device,
         dtype: torch.dtype, impl: str) -> TextModel:
    """A Dream checkpoint as a TextModel; ``impl`` is "native" or "remote" (checked by the caller)."""
    if impl == "remote":
        require_trust(trust_remote_code, f"Dream checkpoint {model_dir} with {IMPL_SWITCH}=remote",
                      f"use {IMPL_SWITCH}=native")
        model = load_remote_model(model_dir, dtype=dtype, device=device)
    else:
        model = load_dream(model_dir, config, device, dtype)
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code, fallback=Qwen2Tokenizer)
    mask_id = next((m for m in (config.get("mask_token_id"), tokenizer.mask_token_id) if m is not None), None)
    if mask_id is None:
        raise ConfigError(f"{model_dir} names no mask token (config mask_token_id or the tokenizer's mask token)")
    stops = stop_ids(tokenizer, config)
    return TextModel(
        denoiser=(RemoteDreamDenoiser(model, mask_id, config["vocab_size"]) if impl == "remote"
                  else CachedDream(model, mask_id, config["vocab_size"])),
        tokenizer=tokenizer,
        mask_id=mask_id,
        pad_id=pad_id(tokenizer, config, mask_id, stops),
        stop_ids=stops,
        family="dream",
        max_length=config.get("max_position_embeddings"),
    )
