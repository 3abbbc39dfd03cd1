"""Native LLaDA: checkpoint-name mapping, equality with a bidirectional transformers Llama holding the same weights,
bidirectionality, padding, and attention over cached prefix / suffix keys (the hook for a later KV cache)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

from mdsample.errors import ConfigError
from mdsample.models.fused import rotary
from mdsample.models.lean import LayerKV, LeanTransformer, Rotary, build_lean, fuse_qkv
from mdsample.models.llada import convert_llada_weights, llada_config, load_llada

LLADA = {"model_type": "llada", "d_model": 48, "n_heads": 4, "n_kv_heads": 2, "n_layers": 2, "mlp_hidden_size": 40,
         "vocab_size": 50, "embedding_size": 56, "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "weight_tying": False,
         "block_type": "llama", "layer_norm_type": "rms", "activation_type": "silu", "rope": True,
         "rope_full_precision": True, "include_bias": False, "include_qkv_bias": False, "mask_token_id": 55}
RENAME = {"self_attn.q_proj": "q_proj", "self_attn.k_proj": "k_proj", "self_attn.v_proj": "v_proj",
          "self_attn.o_proj": "attn_out", "mlp.gate_proj": "ff_proj", "mlp.up_proj": "up_proj",
          "mlp.down_proj": "ff_out", "input_layernorm": "attn_norm", "post_attention_layernorm": "ff_norm"}


def llada_names(llama: LlamaForCausalLM) -> dict[str, torch.Tensor]:
    """The Llama's weights under LLaDA's checkpoint names (LLaDA is a bidirectional Llama with other names)."""
    out = {}
    for name, tensor in llama.state_dict().items():
        if name.startswith("model.layers."):
            i, rest = name.removeprefix("model.layers.").split(".", 1)
            module, leaf = rest.rsplit(".", 1)
            name = f"model.transformer.blocks.{i}.{RENAME[module]}.{leaf}"
        else:
            name = {"model.embed_tokens.weight": "model.transformer.wte.weight", "model.norm.weight":
                    "model.transformer.ln_f.weight", "lm_head.weight": "model.transformer.ff_out.weight"}[name]
        out[name] = tensor.clone()
    return out


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A bidirectional transformers Llama and the native LLaDA loaded from the same weights saved LLaDA-style."""
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=LLADA["embedding_size"], hidden_size=48, intermediate_size=40, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=False, attn_implementation="sdpa"))
    with torch.no_grad():
        for name, p in llama.named_parameters():
            p.normal_(1.0 if "norm" in name else 0.0, 0.2 if "norm" in name else 0.4)
    for layer in llama.model.layers:
        layer.self_attn.is_causal = False
    model_dir = tmp_path_factory.mktemp("llada")
    save_file(llada_names(llama), str(model_dir / "model.safetensors"))
    (model_dir / "config.json").write_text(json.dumps(LLADA))
    return llama.eval(), load_llada(model_dir, LLADA, "cpu", torch.float32)


def test_weight_names_map_onto_every_lean_parameter(pair):
    llama, _ = pair
    cfg = llada_config(LLADA)
    lean = convert_llada_weights(llada_names(llama), cfg)
    assert set(lean) == set(LeanTransformer(cfg).state_dict())
    w = llada_names(llama)
    q, k, v = (w[f"model.transformer.blocks.1.{p}.weight"] for p in ("q_proj", "k_proj", "v_proj"))
    assert torch.equal(lean["layers.1.attn.qkv.weight"], fuse_qkv(q, k, v, 12))
    gate_up = torch.cat([w[f"model.transformer.blocks.0.{p}.weight"] for p in ("ff_proj", "up_proj")])
    assert torch.equal(lean["layers.0.mlp.gate_up.weight"], gate_up)
    assert lean["head.weight"].shape == (56, 48) and lean["layers.0.attn.qkv.weight"].shape == ((4 + 2 * 2) * 12, 48)


def test_missing_and_foreign_tensors_are_named(pair):
    llama, _ = pair
    cfg = llada_config(LLADA)
    weights = llada_names(llama)
    del weights["model.transformer.blocks.1.up_proj.weight"]
    with pytest.raises(ConfigError, match=r"lacks transformer.blocks.1.up_proj.weight"):
        convert_llada_weights(weights, cfg)
    weights = {**llada_names(llama), "model.transformer.wpe.weight": torch.zeros(2)}
    with pytest.raises(ConfigError, match="wpe.weight"):
        convert_llada_weights(weights, cfg)
    with pytest.raises(ConfigError, match="checkpoint tensor embed.weight has shape"):
        build_lean(llada_config({**LLADA, "embedding_size": 60}), convert_llada_weights(llada_names(llama), cfg),
                   "cpu", torch.float32)


@pytest.mark.parametrize("change", [{"block_type": "sequential"}, {"alibi": True}, {"include_bias": True}])
def test_variants_the_lean_module_lacks_are_refused(change):
    with pytest.raises(ConfigError, match="not supported natively"):
        llada_config({**LLADA, **change})


def test_logits_equal_a_bidirectional_llama(pair):
    llama, native = pair
    tokens = torch.randint(0, 50, (3, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(native(tokens).logits, llama(input_ids=tokens).logits, atol=1e-4, rtol=1e-4)


def test_padded_keys_are_ignored_and_positions_are_columns(pair):
    llama, native = pair
    tokens = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :4] = 0
    keys = mask.bool()[:, None, None, :].expand(2, 1, 9, 9)
    with torch.no_grad():
        expected = llama(input_ids=tokens, attention_mask=keys).logits
        got = native(tokens, attention_mask=mask).logits
        torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-4, rtol=1e-4)
        alone = native(tokens[1:, 4:]).logits[0]
    torch.testing.assert_close(got[1, 4:], alone, atol=1e-4, rtol=1e-4)  # rotary: only differences of columns count


def test_a_late_token_changes_early_logits(pair):
    _, native = pair
    tokens = torch.randint(0, 50, (1, 10), generator=torch.Generator().manual_seed(3))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 50
    with torch.no_grad():
        assert (native(tokens).logits[0, 0] - native(changed).logits[0, 0]).abs().max() > 1e-3


@pytest.mark.parametrize("span", [(0, 4), (3, 7), (6, 10)])
def test_a_block_against_cached_prefix_and_suffix_keys_equals_the_full_pass(pair, span):
    _, native = pair
    start, end = span
    tokens = torch.randint(0, 50, (2, 10), generator=torch.Generator().manual_seed(4))
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[0, :2] = 0
    with torch.no_grad():
        full = native(tokens, attention_mask=mask, return_kv=True)
        prefix = [LayerKV(kv.keys[:, :, :start], kv.values[:, :, :start]) for kv in full.kv] if start else None
        suffix = [LayerKV(kv.keys[:, :, end:], kv.values[:, :, end:]) for kv in full.kv] if end < 10 else None
        block = native(tokens[:, start:end], attention_mask=mask, prefix=prefix, suffix=suffix, return_kv=True)
    torch.testing.assert_close(block.logits, full.logits[:, start:end], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(block.kv[0].keys, full.kv[0].keys[:, :, start:end], atol=1e-6, rtol=1e-6)


def test_interleaved_complex_rotation_equals_rotate_half():
    """fuse_qkv's row order + fused.rotary is the checkpoints' rotate-half rotary embedding, reordered."""
    heads, dim, length = 3, 8, 5
    weight = torch.randn(heads * dim, 16, generator=torch.Generator().manual_seed(5))
    x = torch.randn(2, length, 16, generator=torch.Generator().manual_seed(6))
    plain = (x @ weight.T).view(2, length, heads, dim)
    inv_freq = 1.0 / 10000.0 ** (torch.arange(0, dim, 2).float() / dim)
    angles = torch.outer(torch.arange(length).float(), inv_freq).repeat(1, 2)[None, :, None, :]
    first, second = plain.chunk(2, dim=-1)
    expected = plain * angles.cos() + torch.cat([-second, first], dim=-1) * angles.sin()
    interleaved = (x @ fuse_qkv(weight, weight[:0], weight[:0], dim).T).view(2, length, heads, dim)
    got = rotary(interleaved, Rotary(dim, 10000.0).table(length, x.device, x.dtype), torch.arange(length)[None])
    back = got.unflatten(-1, (dim // 2, 2)).transpose(-1, -2).flatten(-2)
    torch.testing.assert_close(back, expected, atol=1e-4, rtol=1e-4)
