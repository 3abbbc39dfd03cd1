"""Native Dream: Qwen2-name mapping, equality with transformers' Qwen2 run bidirectionally on the same checkpoint,
bidirectionality, Dream's positions under padding and its one-position logit shift."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from mdsample.errors import ConfigError
from mdsample.models.dream import convert_dream_weights, dream_config, dream_positions, load_dream, shift_logits
from mdsample.models.lean import LeanTransformer, fuse_qkv


def qwen2(tie: bool, seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=60, hidden_size=48, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rope_theta=10000.0, tie_word_embeddings=tie,
        attn_implementation="sdpa"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(1.0 if "norm" in name else 0.0, 0.2 if "norm" in name else 0.4)
    for layer in model.model.layers:
        layer.self_attn.is_causal = False
    return model.eval()


@pytest.fixture(scope="module", params=[False, True], ids=["untied", "tied"])
def pair(request, tmp_path_factory):
    """transformers' Qwen2 made bidirectional (= Dream before its shift) and the native module from its checkpoint."""
    reference = qwen2(tie=request.param)
    model_dir = tmp_path_factory.mktemp("dream")
    reference.save_pretrained(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    return reference, load_dream(model_dir, config, "cpu", torch.float32), config


def test_weight_names_map_onto_every_lean_parameter(pair):
    reference, native, config = pair
    cfg = dream_config(config)
    lean = convert_dream_weights(dict(reference.state_dict()), cfg)
    assert set(lean) == set(LeanTransformer(cfg).state_dict())
    assert ("head.weight" in lean) != cfg.tie_embeddings
    sd = reference.state_dict()
    q, k, v = (sd[f"model.layers.1.self_attn.{p}_proj.bias"] for p in "qkv")
    assert torch.equal(lean["layers.1.attn.qkv.bias"], fuse_qkv(q, k, v, cfg.dim))
    weights = dict(reference.state_dict())
    del weights["model.layers.0.mlp.gate_proj.weight"]
    with pytest.raises(ConfigError, match="lacks layers.0.mlp.gate_proj.weight"):
        convert_dream_weights(weights, cfg)


def test_logits_equal_a_bidirectional_qwen2(pair):
    reference, native, _ = pair
    tokens = torch.randint(0, 60, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(native(tokens).logits, reference(input_ids=tokens).logits, atol=1e-4, rtol=1e-4)


def test_padding_with_dreams_positions(pair):
    reference, native, _ = pair
    tokens = torch.randint(0, 60, (2, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, :3] = 0
    positions = dream_positions(mask)
    assert positions[0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5] and positions[1].tolist() == list(range(9))
    keys = mask.bool()[:, None, None, :].expand(2, 1, 9, 9)
    with torch.no_grad():
        expected = reference(input_ids=tokens, attention_mask=keys, position_ids=positions).logits
        got = native(tokens, attention_mask=mask, positions=positions).logits
    torch.testing.assert_close(got[mask.bool()], expected[mask.bool()], atol=1e-4, rtol=1e-4)


def test_a_late_token_changes_early_logits(pair):
    _, native, _ = pair
    tokens = torch.randint(0, 60, (1, 10), generator=torch.Generator().manual_seed(3))
    changed = tokens.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 60
    with torch.no_grad():
        assert (native(tokens).logits[0, 0] - native(changed).logits[0, 0]).abs().max() > 1e-3


def test_shift_moves_each_output_one_position_right():
    logits = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    shifted = shift_logits(logits)
    assert torch.equal(shifted[:, 1:], logits[:, :-1]) and torch.equal(shifted[:, 0], logits[:, 0])


@pytest.mark.parametrize("change", [{"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
                                    {"use_sliding_window": True}, {"hidden_act": "gelu"}])
def test_variants_the_lean_module_lacks_are_refused(pair, change):
    with pytest.raises(ConfigError, match="not supported natively"):
        dream_config({**pair[2], **change})
