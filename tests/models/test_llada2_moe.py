"""LLaDA2's MoE (models/llada2.py): the grouped expert products equal a plain per-expert loop, on the grouped-mm path
and on the padded-bmm fallback; checkpoints with per-expert weight names load strictly and state dicts round-trip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mdsample.errors import ConfigError
from mdsample.models import llada2
from mdsample.models.llada2 import LLaDA2, LLaDA2Config, MoE, build_llada2

CFG = LLaDA2Config(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=8, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=16,
                   num_shared_experts=1, n_group=2, topk_group=1, first_k_dense_replace=1, routed_scaling_factor=2.5)
UNUSED = [5, 6]
"""Experts the router never picks (a large negative bias): they receive no tokens."""


def per_expert_reference(moe: MoE, x: torch.Tensor) -> torch.Tensor:
    """Each token through each of its chosen experts one at a time, from the checkpoint-named weights."""
    weights = moe.state_dict()
    flat = x.reshape(-1, x.shape[-1])
    experts, scales = moe.gate(flat)
    out = torch.zeros(flat.shape, dtype=torch.float32)
    for t in range(flat.shape[0]):
        for e, scale in zip(experts[t].tolist(), scales[t], strict=True):
            w = {p: weights[f"experts.{e}.{p}_proj.weight"] for p in ("gate", "up", "down")}
            y = F.linear(F.silu(F.linear(flat[t], w["gate"])) * F.linear(flat[t], w["up"]), w["down"])
            out[t] += scale * y.float()
    return (out.to(x.dtype) + moe.shared_experts(flat)).view(x.shape)


@pytest.fixture
def moe():
    torch.manual_seed(0)
    moe = MoE(CFG)
    with torch.no_grad():
        moe.gate.expert_bias[UNUSED] = -100.0
    return moe


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped_mm", "padded_bmm"])
def test_the_moe_equals_a_per_expert_loop(moe, monkeypatch, grouped):
    if grouped and not llada2._grouped_mm_runs(torch.device("cpu"), torch.float32):
        pytest.skip("this torch has no grouped mm for float32 on the CPU")
    if not grouped:
        monkeypatch.setattr(llada2, "_grouped_mm_runs", lambda *_: False)
    x = torch.randn(3, 7, CFG.hidden_size)
    counts = torch.bincount(moe.gate(x.view(-1, CFG.hidden_size))[0].flatten(), minlength=CFG.num_experts)
    assert (counts[UNUSED] == 0).all() and (counts > 0).sum() >= 4
    with torch.no_grad():
        torch.testing.assert_close(moe(x), per_expert_reference(moe, x), rtol=1e-5, atol=1e-6)


def test_bfloat16_grouped_and_padded_agree(moe, monkeypatch):
    moe = moe.to(torch.bfloat16)
    x = torch.randn(2, 5, CFG.hidden_size, dtype=torch.bfloat16)
    with torch.no_grad():
        grouped = moe(x)
        monkeypatch.setattr(llada2, "_grouped_mm_runs", lambda *_: False)
        torch.testing.assert_close(grouped, moe(x), rtol=2e-2, atol=2e-2)


def checkpoint_weights(cfg: LLaDA2Config) -> dict[str, torch.Tensor]:
    """Random weights under a LLaDA2 checkpoint's own names (one gate/up/down weight per expert)."""
    return {name: torch.randn_like(tensor) for name, tensor in LLaDA2(cfg).state_dict().items()}


def test_a_checkpoint_with_per_expert_names_loads_strictly_and_round_trips():
    weights = checkpoint_weights(CFG)
    assert "model.layers.1.mlp.experts.7.down_proj.weight" in weights
    assert not any("experts_gate_up" in name or "experts_down" in name for name in weights)
    model = build_llada2(CFG, dict(weights), "cpu", torch.float32)
    moe = model.model.layers[1].mlp
    for e in range(CFG.num_experts):
        inner = CFG.moe_intermediate_size
        assert torch.equal(moe.experts_gate_up[e, :inner], weights[f"model.layers.1.mlp.experts.{e}.gate_proj.weight"])
        assert torch.equal(moe.experts_gate_up[e, inner:], weights[f"model.layers.1.mlp.experts.{e}.up_proj.weight"])
        assert torch.equal(moe.experts_down[e], weights[f"model.layers.1.mlp.experts.{e}.down_proj.weight"])
    saved = model.state_dict()
    assert saved.keys() == weights.keys() and all(torch.equal(saved[k], weights[k]) for k in weights)
    again = LLaDA2(CFG)
    again.load_state_dict(saved, strict=True)
    ids = torch.randint(0, CFG.vocab_size, (2, 6))
    with torch.no_grad():
        torch.testing.assert_close(again(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_a_checkpoint_missing_an_expert_does_not_load():
    weights = checkpoint_weights(CFG)
    del weights["model.layers.1.mlp.experts.3.up_proj.weight"]
    with pytest.raises(ConfigError, match="do not fit"):
        build_llada2(CFG, weights, "cpu", torch.float32)
