"""Native Dream: the official checkpoints (Dream-org/Dream-v0-*-7B) loaded into the lean module, no remote code.

Dream is Qwen2 (biased q/k/v projections, grouped-query attention, RMSNorm, rotary positions, SwiGLU) initialised
from an autoregressive model and run bidirectionally. It kept the autoregressive habit of predicting the *next*
token: the logits for position i are the output at position i - 1 (``shift_logits``; position 0 keeps its own).
With left padding Dream numbers positions from the first real token (``dream_positions``), as its generation code does.

Checkpoint layout (Qwen2): ``model.embed_tokens``, ``model.layers.{i}.self_attn.{q,k,v,o}_proj``,
``model.layers.{i}.mlp.{gate,up,down}_proj``, ``model.layers.{i}.{input,post_attention}_layernorm``, ``model.norm``,
``lm_head`` (absent when ``tie_word_embeddings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdsample.errors import ConfigError
from mdsample.models.lean import LeanConfig, LeanTransformer, build_lean, fuse_qkv, load_safetensors


def dream_config(config: dict[str, Any], qkv_bias: bool = True) -> LeanConfig:
    """The lean shape of a Dream ``config.json``; ConfigError for variants the lean module does not implement.

    The rotary base is read from ``rope_theta`` (Dream's files) or ``rope_parameters`` (transformers 5 Qwen2 files).
    """
    rope = config.get("rope_parameters") or {}
    plain_rope = not config.get("rope_scaling") and rope.get("rope_type", "default") == "default"
    if not plain_rope or config.get("use_sliding_window") or config.get("hidden_act", "silu") != "silu":
        raise ConfigError("this Dream variant (rope scaling, sliding windows or a non-SiLU MLP) is not supported "
                          "natively; load it with its own code (domain.impl=remote, domain.trust_remote_code=true)")
    heads = config["num_attention_heads"]
    return LeanConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=config.get("num_key_value_heads") or heads,
        intermediate_size=config["intermediate_size"],
        rope_theta=float(config.get("rope_theta") or rope.get("rope_theta", 10000.0)),
        norm_eps=float(config.get("rms_norm_eps", 1e-6)),
        head_dim=config.get("head_dim"),
        qkv_bias=qkv_bias,
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
    )


def convert_dream_weights(weights: dict[str, torch.Tensor], cfg: LeanConfig) -> dict[str, torch.Tensor]:
    """Qwen2 / Dream checkpoint names -> lean names, fusing q/k/v (``fuse_qkv``) and gate/up. Consumes ``weights``."""
    src = {name.removeprefix("model."): weights.pop(name) for name in list(weights)}

    def take(name: str) -> torch.Tensor:
        if name not in src:
            raise ConfigError(f"Dream checkpoint lacks {name}; is it a Dream (Qwen2-layout) checkpoint of this config?")
        return src.pop(name)

    out = {"embed.weight": take("embed_tokens.weight"), "norm.weight": take("norm.weight")}
    if not cfg.tie_embeddings:
        out["head.weight"] = take("lm_head.weight")
    for i in range(cfg.num_layers):
        b = o = f"layers.{i}."
        out[o + "attn_norm.weight"] = take(b + "input_layernorm.weight")
        out[o + "mlp_norm.weight"] = take(b + "post_attention_layernorm.weight")
        for leaf in ("weight", "bias") if cfg.qkv_bias else ("weight",):
            q, k, v = (take(f"{b}self_attn.{p}_proj.{leaf}") for p in "qkv")
            out[f"{o}attn.qkv.{leaf}"] = fuse_qkv(q, k, v, cfg.dim)
        out[o + "attn.out.weight"] = take(b + "self_attn.o_proj.weight")
        out[o + "mlp.gate_up.weight"] = torch.cat([take(b + "mlp.gate_proj.weight"), take(b + "mlp.up_proj.weight")])
        out[o + "mlp.down.weight"] = take(b + "mlp.down_proj.weight")
    src.pop("lm_head.weight", None)  # a tied checkpoint may still store the copy
    if src:
        raise ConfigError(f"Dream checkpoint has tensors the config does not describe: {sorted(src)[:4]}")
    return out


def load_dream(model_dir: Path, config: dict[str, Any], device: torch.device | str,
               dtype: torch.dtype) -> LeanTransformer:
    """The lean Dream of a checkpoint directory (config.json + safetensors), in ``dtype`` on ``device``."""
    weights = load_safetensors(model_dir, device)
    cfg = dream_config(config, qkv_bias=any(k.endswith("q_proj.bias") for k in weights))
    return build_lean(cfg, convert_dream_weights(weights, cfg), device, dtype)


def dream_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids ``[B, L]`` counting real tokens from 0 (padding gets 0; it is never attended to)."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp_min(0)


def shift_logits(logits: torch.Tensor) -> torch.Tensor:
    """Dream's outputs predict the next position: logits for position i are the output at i - 1 (i = 0 keeps its)."""
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
