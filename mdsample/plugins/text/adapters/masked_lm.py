"""Any ``AutoModelForMaskedLM`` (BERT / RoBERTa / ModernBERT family) as a text denoiser.

A masked LM predicts every [MASK] from both sides, which is all an MDM sampler asks. Two details make it behave on
left-padded prompts: the prompt is encoded without the trailing [SEP] (the generation continues after it) but with
the leading [CLS] the model was trained to see first, and position ids count real tokens only, so learned absolute
positions (BERT) see each prompt start at 0 whatever its padding. Models that derive positions from the pad tokens
themselves (the RoBERTa family) are left to do so, since their positions start after the padding index.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForMaskedLM
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters.errors import brief
from mdsample.plugins.text.adapters.remote import require_trust
from mdsample.plugins.text.adapters.text_model import TextModel
from mdsample.plugins.text.adapters.tokens import load_tokenizer, pad_id, stop_ids


class MaskedLMDenoiser:
    """``tokens[B, L]`` (+ ``attention_mask[B, L]``) -> logits ``[B, L, V]`` of a masked LM, in its dtype."""

    def __init__(self, model: torch.nn.Module, mask_id: int, max_length: int | None):
        self.model = model.eval()
        self.mask_id = mask_id
        self.vocab_size: int = model.get_output_embeddings().weight.shape[0]
        self.max_length = max_length
        embeddings = getattr(model.base_model, "embeddings", None)
        self._takes_positions = "position_ids" in inspect.signature(model.forward).parameters and not hasattr(
            embeddings, "create_position_ids_from_input_ids")

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.max_length is not None and tokens.shape[1] > self.max_length:
            raise ConfigError(f"canvas of {tokens.shape[1]} tokens exceeds this model's {self.max_length} positions; "
                              "shorten the prompt or the generation length")
        kwargs: dict[str, torch.Tensor] = {}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
            if self._takes_positions:
                kwargs["position_ids"] = (attention_mask.long().cumsum(dim=-1) - 1).clamp_min(0)
        return self.model(input_ids=tokens, **kwargs).logits


def load(model_dir: Path, config: dict[str, Any], *, trust_remote_code: bool, device: torch.device,
         dtype: torch.dtype, impl: str) -> TextModel:
    """Load a masked LM checkpoint (``impl`` does not apply: transformers' class or the checkpoint's own code)."""
    if str(config.get("model_type", "")).lower() not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        require_trust(trust_remote_code, f"masked LM {model_dir} (model_type {config.get('model_type')!r})")
    try:
        model = AutoModelForMaskedLM.from_pretrained(str(model_dir), dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load {model_dir} as a masked LM ({brief(err)})") from None
    tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
    if tokenizer.mask_token_id is None:
        raise ConfigError(f"the tokenizer of {model_dir} has no mask token; it cannot fill masked canvases")
    mask_id = tokenizer.mask_token_id
    stops = stop_ids(tokenizer, config, extra=(tokenizer.sep_token_id,))
    prefix = next((t for t in (tokenizer.cls_token_id, tokenizer.bos_token_id) if t is not None), None)
    max_length = config.get("max_position_embeddings")
    return TextModel(
        denoiser=MaskedLMDenoiser(model.to(device), mask_id, max_length),
        tokenizer=tokenizer,
        mask_id=mask_id,
        pad_id=pad_id(tokenizer, config, mask_id, stops),
        stop_ids=stops,
        family="masked_lm",
        add_special_tokens=False,
        prefix_ids=() if prefix is None else (prefix,),
        max_length=max_length,
    )
