"""load_text_model: ``--model HUB_ID_OR_PATH`` -> TextModel, whichever family the checkpoint belongs to.

The family is read from config.json before anything else runs, so an unknown model, a missing path or remote code
the user did not allow fails in one line, before gigabytes of weights are read.
"""

from __future__ import annotations

import torch

from mdsample.core.loop import Editing
from mdsample.errors import ConfigError, UnknownChoiceError
from mdsample.plugins.text.adapters import diffusion_gemma, dream, llada, llada2, masked_lm
from mdsample.plugins.text.adapters.source import detect_family, read_config, resolve_model_dir
from mdsample.plugins.text.adapters.text_model import TextModel

IMPLS = ("native", "remote")
"""How LLaDA / Dream checkpoints run: mdsample's lean module, or the checkpoint's own code (trust_remote_code)."""

LOADERS = {"llada": llada.load, "dream": dream.load, "masked_lm": masked_lm.load, "llada2": llada2.load,
           "diffusion_gemma": diffusion_gemma.load}

EDITING_FAMILIES = ("llada2",)
"""Families trained for post-mask editing (LLaDA2.1 replaces committed tokens it contradicts)."""


def load_text_model(
    name_or_path: str,
    *,
    trust_remote_code: bool,
    device: torch.device,
    dtype: torch.dtype | None = None,
    impl: str = "native",
    editing: Editing | None = None,
    block_context: str = "cached",
) -> TextModel:
    """Load a LLaDA, Dream or masked-LM checkpoint (local directory or hub id) onto ``device``.

    ``dtype`` defaults to bfloat16 on CUDA (the released LLaDA / Dream weights are bf16) and float32 elsewhere.
    ``impl`` applies to LLaDA and Dream: "native" (default, no remote code) or "remote" (the checkpoint's code,
    only with ``trust_remote_code``); masked LMs and DiffusionGemma always run through transformers' classes, LLaDA2
    through mdsample's native module. ``editing`` (post-mask editing) is for the families in EDITING_FAMILIES;
    ``block_context`` is how LLaDA2 reads its context ("cached": its own generate; "full": diffusers' pipeline).
    """
    if impl not in IMPLS:
        raise UnknownChoiceError("model implementation", impl, IMPLS)
    device = torch.device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    model_dir = resolve_model_dir(name_or_path)
    config = read_config(model_dir)
    family = detect_family(config)
    extra = {}
    if editing is not None:
        if family not in EDITING_FAMILIES:
            raise ConfigError(f"post-mask editing (domain.editing_threshold) needs a model trained for it (LLaDA2.1); "
                              f"{name_or_path} is a {family} checkpoint: leave domain.editing_threshold unset")
        extra["editing"] = editing
    if family == "llada2":
        extra["context"] = block_context
    return LOADERS[family](model_dir, config, trust_remote_code=trust_remote_code, device=device, dtype=dtype,
                           impl=impl, **extra)
