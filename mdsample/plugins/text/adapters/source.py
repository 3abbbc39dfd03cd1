"""Where a ``--model`` lives and what it is: a local directory or a hub id, resolved once to a local snapshot.

Resolving to a directory first (a hub id goes through huggingface_hub's cache, which honours ``HF_HUB_OFFLINE``)
means the config, the tokenizer, the weights and any remote code are all read from the same files, and the
family is decided from ``config.json`` alone, before any model code (ours or the checkpoint's) runs. Only
safetensors weights are fetched: pickled ``.bin`` checkpoints are never downloaded nor loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.text.adapters.errors import brief

FETCHED_FILES = ["*.json", "*.safetensors", "*.py", "*.txt", "*.model", "*.jinja", "*.tiktoken"]
"""What a hub snapshot needs: config, weights, remote code, tokenizer files and chat templates."""

FAMILIES = ("llada", "dream", "masked_lm", "llada2", "diffusion_gemma")
"""The model families the adapters run; ``detect_family`` maps a config onto one of them."""


def resolve_model_dir(name_or_path: str) -> Path:
    """The local directory holding ``name_or_path``: the path itself, or the hub snapshot of that repo id."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MissingFileError(f"{name_or_path} has no config.json; point --model at a save_pretrained directory")
        return path
    if path.exists() or _looks_like_path(name_or_path):
        raise MissingFileError(f"model directory {name_or_path!r} does not exist; check the path or give a hub id")
    return _hub_snapshot(name_or_path)


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else with a separator (or ~, ., ..) is meant as a path."""
    return name.startswith((".", "~", os.sep)) or name.count("/") > 1 or (os.altsep is not None and os.altsep in name)


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, allow_patterns=FETCHED_FILES))
    except HFValidationError:
        raise ConfigError(f"--model {repo_id!r} is neither a local directory nor a valid hub id (org/name)") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise MissingFileError(f"model {repo_id!r} is not a local directory and could not be fetched from the hub "
                               f"({err.__class__.__name__}); check the id, your network, or HF_HUB_OFFLINE") from err


def read_config(model_dir: Path) -> dict[str, Any]:
    """The raw ``config.json`` (no model code is imported to read it)."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{model_dir / 'config.json'} is not readable JSON ({brief(err)})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{model_dir / 'config.json'} is not a JSON object")
    return config


def detect_family(config: dict[str, Any]) -> str:
    """One of ``FAMILIES`` from ``model_type`` / ``architectures`` / ``auto_map``; ConfigError for anything else."""
    model_type = str(config.get("model_type", "")).lower()
    architectures = [str(a) for a in config.get("architectures") or []]
    if model_type == "diffusion_gemma" or "DiffusionGemmaForBlockDiffusion" in architectures:
        return "diffusion_gemma"
    if model_type == "llada2_moe" or any(a.startswith("LLaDA2") for a in architectures):
        return "llada2"
    if model_type == "llada" or any(a.startswith("LLaDA") for a in architectures):
        return "llada"
    if model_type == "dream" or any(a.startswith("Dream") for a in architectures):
        return "dream"
    if _is_masked_lm(model_type, architectures, config.get("auto_map") or {}):
        return "masked_lm"
    raise ConfigError(f"model_type {model_type or '(none)'!r} (architectures {architectures}) is not a text model "
                      "mdsample can sample: use LLaDA, LLaDA2, Dream, DiffusionGemma or a masked LM (BERT / ModernBERT "
                      "family)")


def _is_masked_lm(model_type: str, architectures: list[str], auto_map: dict[str, Any]) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return (
        any(a.endswith("ForMaskedLM") for a in architectures)
        or "AutoModelForMaskedLM" in auto_map
        or (model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not architectures)
    )
