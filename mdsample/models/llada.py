"""Native LLaDA: the official checkpoints (GSAI-ML/LLaDA-8B-*) loaded into the lean module, no remote code.

LLaDA is a LLaMA-style transformer run bidirectionally: RMSNorm, rotary positions (theta 500000 in the 8B
checkpoints), SwiGLU with ``ff_proj`` as the gate and ``up_proj`` as the up projection, no biases, untied output
layer. Positions are the canvas columns 0..L-1 whatever the padding: LLaDA's own code ignores padding for positions
and only hides padded keys, and rotary attention depends on position differences alone, so left padding leaves the
real tokens' logits unchanged. Rotary embeddings are applied in float32, as the reference code does for the released
checkpoints (``rope_full_precision``).

Checkpoint layout (``model.`` prefix as saved by LLaDAModelLM): ``transformer.wte``, ``transformer.blocks.{i}.``
``{q_proj, k_proj, v_proj, attn_out, attn_norm, ff_norm, ff_proj, up_proj, ff_out}``, ``transformer.ln_f``,
``transformer.ff_out`` (absent when ``weight_tying``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdsample.errors import ConfigError
from mdsample.models.lean import LeanConfig, LeanTransformer, build_lean, fuse_qkv, load_safetensors

MASK_ID = 126336
"""LLaDA's [MASK] (``<|mdm_mask|>``), used when a config does not name ``mask_token_id``."""

SUPPORTED = {"block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu", "rope": True,
             "alibi": False, "input_emb_norm": False, "scale_logits": False, "attention_layer_norm": False,
             "include_bias": False, "block_group_size": 1}
"""Config values of the released checkpoints; other LLaDA variants need their own code."""


def llada_config(config: dict[str, Any]) -> LeanConfig:
    """The lean shape of a LLaDA ``config.json``; ConfigError for variants the lean module does not implement."""
    odd = {k: config.get(k) for k, v in SUPPORTED.items() if k in config and config[k] != v}
    if odd or config.get("bias_for_layer_norm"):
        raise ConfigError(f"this LLaDA variant ({odd or 'layer-norm biases'}) is not supported natively; load it with "
                          "its own code (domain.impl=remote, domain.trust_remote_code=true)")
    hidden, heads = config["d_model"], config["n_heads"]
    return LeanConfig(
        vocab_size=config.get("embedding_size") or config["vocab_size"],
        hidden_size=hidden,
        num_layers=config["n_layers"],
        num_heads=heads,
        num_kv_heads=config.get("n_kv_heads") or (1 if config.get("multi_query_attention") else heads),
        intermediate_size=config.get("mlp_hidden_size") or config.get("mlp_ratio", 4) * hidden,
        rope_theta=float(config.get("rope_theta", 10000.0)),
        norm_eps=float(config.get("rms_norm_eps", 1e-5)),
        qkv_bias=bool(config.get("include_qkv_bias", False)),
        tie_embeddings=bool(config.get("weight_tying", False)),
    )


def convert_llada_weights(weights: dict[str, torch.Tensor], cfg: LeanConfig) -> dict[str, torch.Tensor]:
    """LLaDA checkpoint names -> lean names, fusing q/k/v (``fuse_qkv``) and ff_proj/up_proj. Consumes ``weights``."""
    src = {name.removeprefix("model.").removeprefix("transformer."): weights.pop(name) for name in list(weights)}

    def take(name: str) -> torch.Tensor:
        if name not in src:
            raise ConfigError(f"LLaDA checkpoint lacks transformer.{name}; is it a LLaDA checkpoint of this config?")
        return src.pop(name)

    out = {"embed.weight": take("wte.weight"), "norm.weight": take("ln_f.weight")}
    if not cfg.tie_embeddings:
        out["head.weight"] = take("ff_out.weight")
    for i in range(cfg.num_layers):
        b, o = f"blocks.{i}.", f"layers.{i}."
        out[o + "attn_norm.weight"] = take(b + "attn_norm.weight")
        out[o + "mlp_norm.weight"] = take(b + "ff_norm.weight")
        for leaf in ("weight", "bias") if cfg.qkv_bias else ("weight",):
            q, k, v = (take(f"{b}{p}.{leaf}") for p in ("q_proj", "k_proj", "v_proj"))
            out[f"{o}attn.qkv.{leaf}"] = fuse_qkv(q, k, v, cfg.dim)
        out[o + "attn.out.weight"] = take(b + "attn_out.weight")
        out[o + "mlp.gate_up.weight"] = torch.cat([take(b + "ff_proj.weight"), take(b + "up_proj.weight")])
        out[o + "mlp.down.weight"] = take(b + "ff_out.weight")
    if src:
        raise ConfigError(f"LLaDA checkpoint has tensors the config does not describe: {sorted(src)[:4]}")
    return out


def load_llada(model_dir: Path, config: dict[str, Any], device: torch.device | str,
               dtype: torch.dtype) -> LeanTransformer:
    """The lean LLaDA of a checkpoint directory (config.json + safetensors), in ``dtype`` on ``device``."""
    cfg = llada_config(config)
    return build_lean(cfg, convert_llada_weights(load_safetensors(model_dir, device), cfg), device, dtype)
