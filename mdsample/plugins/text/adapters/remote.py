"""Loading a checkpoint through its own modeling code (``trust_remote_code``), only when the user allows it.

Remote code is arbitrary Python shipped with a checkpoint; DESIGN.md allows it only on the user's explicit request,
so the refusal names the exact switch that grants it and, where there is one, the native alternative.

The model is built with ``from_config`` and its safetensors loaded with ``load_state_dict`` rather than through
``from_pretrained``: the released LLaDA / Dream code was written for transformers 4.x, and transformers 5's
``from_pretrained`` expects hooks (``post_init`` bookkeeping) that code never calls. Whatever the foreign code
raises is reported as one ConfigError naming the transformers version, since the user can only switch implementation.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModel

from mdsample.errors import ConfigError
from mdsample.models.lean import load_safetensors
from mdsample.plugins.text.adapters.errors import brief

TRUST_SWITCH = "domain.trust_remote_code=true"
IMPL_SWITCH = "domain.impl"
"""The option choosing how LLaDA / Dream run ("native" or "remote"), as the text domain names it."""


class RemoteDenoiser:
    """A model running its checkpoint's own code, held as a denoiser; subclasses speak the family's call. It is run
    as it is: no KV cache and no CUDA-graph capture (foreign code may synchronise or branch on shapes)."""

    def __init__(self, model: torch.nn.Module, mask_id: int, vocab_size: int):
        self.model = model
        self.mask_id = mask_id
        self.vocab_size = vocab_size


def require_trust(trust_remote_code: bool, what: str, alternative: str = "") -> None:
    """ConfigError unless the user allowed remote code; ``what`` names the checkpoint and why it needs code."""
    if not trust_remote_code:
        hint = f", or {alternative}" if alternative else ""
        raise ConfigError(f"{what} runs Python code shipped with the checkpoint; allow it with {TRUST_SWITCH}{hint}")


def load_remote_model(model_dir: Path, *, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    """``AutoModel`` from the checkpoint's ``auto_map`` (trust already checked) with its weights, on ``device``."""
    weights = load_safetensors(model_dir)
    try:
        config = AutoConfig.from_pretrained(str(model_dir), trust_remote_code=True)
        model = AutoModel.from_config(config, trust_remote_code=True, dtype=dtype)
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except Exception as err:  # third-party code: anything it raises means "this code does not run here"
        raise ConfigError(f"the modeling code shipped with {model_dir} fails under transformers "
                          f"{transformers.__version__} ({brief(err)}); use {IMPL_SWITCH}=native"
                          ) from err
    if missing or unexpected:
        raise ConfigError(f"{model_dir}: weights do not fit its own model class: missing {missing[:3]}, unexpected "
                          f"{unexpected[:3]}")
    return model.to(device).eval()
