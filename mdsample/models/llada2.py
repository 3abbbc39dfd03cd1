"""Native LLaDA2.0 / 2.1 (inclusionAI/LLaDA2.x-mini / -flash): the MoE block-diffusion LM, no remote code.

Why native rather than ``trust_remote_code``: the released ``modeling_llada2_moe.py`` targets one transformers
version and brings its own generate loop, while mdsample needs a plain ``tokens -> logits`` call it can hold behind
the Denoiser protocol (and later a KV cache it drives); this module is that call, on the checkpoint's own tensors
(same names, loaded strictly, so a layout it does not know fails in one line instead of running wrong).

Architecture (Ling 2.0 family): token embedding ``model.word_embeddings``; per layer RMSNorm, attention with a fused
``query_key_value`` projection, per-head RMSNorm on queries and keys (``query_layernorm`` / ``key_layernorm``), rotary
positions on the first ``partial_rotary_factor`` of each head, output ``dense``; RMSNorm, then a SwiGLU MLP in the
first ``first_k_dense_replace`` layers and a mixture of experts in the others: a sigmoid router with an
``expert_bias`` used only for choosing, group-limited top-k (the ``topk_group`` best of ``n_group`` groups, a group
scored by its two best experts), weights renormalised and scaled by ``routed_scaling_factor``, plus shared experts.

Attention follows the checkpoint's own code: a 2-D ``attention_mask[B, L]`` hides padded keys from every query (all
positions attend to each other, as diffusers' LLaDA2Pipeline calls it); a 4-D boolean mask ``[B, 1, Q, K]`` is used
as given (block-causal masks, as LLaDA2's own generate builds). A call can also attend to the cached keys/values
of a context (``context``) and hand back its own (``keep``): LLaDA2's own generate caches the prompt and finished
blocks that way, which the block-causal mode of the text adapter uses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mdsample.errors import ConfigError
from mdsample.models.lean import load_safetensors

KV = tuple[torch.Tensor, torch.Tensor]
"""One layer's keys and values, ``[B, kv_heads, positions, head_dim]`` each (after rotary)."""

MASK_ID = 156895
"""LLaDA2's ``<|mask|>``, used when a config does not name ``mask_token_id``."""


@dataclass(frozen=True)
class LLaDA2Config:
    """The shape of a LLaDA2 ``config.json`` (field names as the checkpoints write them)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    num_experts: int
    num_experts_per_tok: int
    moe_intermediate_size: int
    num_shared_experts: int = 0
    n_group: int = 1
    topk_group: int = 1
    first_k_dense_replace: int = 0
    routed_scaling_factor: float = 1.0
    norm_topk_prob: bool = True
    partial_rotary_factor: float = 1.0
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    use_qkv_bias: bool = False
    use_bias: bool = False
    use_qk_norm: bool = True
    tie_word_embeddings: bool = False

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> LLaDA2Config:
        score = config.get("score_function", "sigmoid")
        if score != "sigmoid" or config.get("hidden_act", "silu") != "silu":
            raise ConfigError(f"this LLaDA2 variant (score_function={score!r}, hidden_act={config.get('hidden_act')!r})"
                              " is not supported natively")
        rope = config.get("rope_parameters") or {}
        heads = config["num_attention_heads"]
        fields = {k: config[k] for k in cls.__dataclass_fields__ if config.get(k) is not None}
        fields.setdefault("head_dim", config["hidden_size"] // heads)
        fields.setdefault("num_key_value_heads", heads)
        fields["rope_theta"] = float(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
        fields["partial_rotary_factor"] = float(rope.get("partial_rotary_factor",
                                                         config.get("partial_rotary_factor", 1.0)))
        try:
            return cls(**fields)
        except TypeError as err:
            raise ConfigError(f"LLaDA2 config.json lacks a field the model needs ({err})") from None


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class MLP(nn.Module):
    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inner, bias=False)
        self.up_proj = nn.Linear(hidden, inner, bias=False)
        self.down_proj = nn.Linear(inner, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Router(nn.Module):
    """Sigmoid scores; experts chosen on score + expert_bias inside the best groups; weights from the scores."""

    def __init__(self, cfg: LLaDA2Config):
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(cfg.num_experts, cfg.hidden_size))
        self.register_buffer("expert_bias", torch.zeros(cfg.num_experts))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        scores = torch.sigmoid(F.linear(x.float(), self.weight.float()))
        choice = scores + self.expert_bias.float()
        groups = choice.view(-1, cfg.n_group, cfg.num_experts // cfg.n_group)
        group_score = groups.topk(min(2, groups.shape[-1]), dim=-1).values.sum(dim=-1)
        best = group_score.topk(cfg.topk_group, dim=-1).indices
        keep = torch.zeros_like(group_score, dtype=torch.bool).scatter(1, best, True)
        choice = choice.masked_fill(~keep.repeat_interleave(groups.shape[-1], dim=1), float("-inf"))
        experts = choice.topk(cfg.num_experts_per_tok, dim=-1).indices
        weights = scores.gather(1, experts)
        if cfg.num_experts_per_tok > 1 and cfg.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return experts, weights * cfg.routed_scaling_factor


class MoE(nn.Module):
    """Routed experts plus shared experts, the routed ones run as grouped matrix products without a host sync.

    The experts' weights are stored stacked, in the checkpoint's (out, in) orientation: ``experts_gate_up``
    ``[E, 2 * inner, hidden]`` (each expert's gate rows, then its up rows) and ``experts_down`` ``[E, hidden, inner]``.
    One module per expert made ~20k small kernel launches per forward of LLaDA2.0-mini (256 experts, 19 MoE layers)
    after a host read of the counts in every layer. The state dict keeps the checkpoint's per-expert names
    (``experts.E.{gate,up,down}_proj.weight``): loading stacks them, saving writes views of the stacked tensors, so
    checkpoints load strictly and a saved model is a checkpoint's layout."""

    def __init__(self, cfg: LLaDA2Config):
        super().__init__()
        self.gate = Router(cfg)
        e, inner, hidden = cfg.num_experts, cfg.moe_intermediate_size, cfg.hidden_size
        self.experts_gate_up = nn.Parameter(torch.empty(e, 2 * inner, hidden))
        self.experts_down = nn.Parameter(torch.empty(e, hidden, inner))
        with torch.no_grad():  # nn.Linear's initialisation, expert by expert in its order (the same random draws)
            for gate_up, down in zip(self.experts_gate_up, self.experts_down, strict=True):
                for w in (gate_up[:inner], gate_up[inner:], down):
                    nn.init.kaiming_uniform_(w, a=5**0.5)
        self.shared_experts = (MLP(cfg.hidden_size, cfg.moe_intermediate_size * cfg.num_shared_experts)
                               if cfg.num_shared_experts else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        experts, weights = self.gate(flat)
        k = experts.shape[1]
        chosen = experts.flatten()
        order = chosen.argsort()
        counts = torch.bincount(chosen, minlength=self.experts_gate_up.shape[0])
        outputs = _experts(flat[order // k], chosen[order], counts, self.experts_gate_up, self.experts_down)
        routed = torch.empty_like(outputs).index_copy_(0, order, outputs).view(-1, k, shape[-1])
        out = (routed.float() * weights.unsqueeze(-1)).sum(dim=1).to(x.dtype)
        if self.shared_experts is not None:
            out = out + self.shared_experts(flat)
        return out.view(shape)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A checkpoint's per-expert weights stacked into the two parameters, then the usual (strict) load."""
        names = [[f"{prefix}experts.{e}.{p}_proj.weight" for p in ("gate", "up", "down")]
                 for e in range(self.experts_gate_up.shape[0])]
        if all(name in state_dict for row in names for name in row):
            gate_up = torch.stack([state_dict.pop(name) for gate, up, _ in names for name in (gate, up)])
            state_dict[prefix + "experts_gate_up"] = gate_up.view(len(names), -1, gate_up.shape[-1])
            state_dict[prefix + "experts_down"] = torch.stack([state_dict.pop(down) for *_, down in names])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """The checkpoint's per-expert names, as views of the stacked parameters (no copy)."""
        super()._save_to_state_dict(destination, prefix, keep_vars)
        gate_up = destination.pop(prefix + "experts_gate_up")
        down = destination.pop(prefix + "experts_down")
        for e, (gate_up_e, down_e) in enumerate(zip(gate_up, down, strict=True)):
            gate, up = gate_up_e.chunk(2)
            destination[f"{prefix}experts.{e}.gate_proj.weight"] = gate
            destination[f"{prefix}experts.{e}.up_proj.weight"] = up
            destination[f"{prefix}experts.{e}.down_proj.weight"] = down_e


_GROUPED_MM = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)
"""``F.grouped_mm(x[T, in], w[G, in, out], offs=int32 cumulative group ends)`` where this torch has it, else its
older private name ``torch._grouped_mm`` (the same call), else None."""


@functools.cache
def _grouped_mm_runs(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether this torch's grouped mm runs on ``device`` in ``dtype`` and matches per-group matmuls (an empty group
    included). Its support has grown by version, device and dtype (bfloat16 on recent CUDA chips first; CPU and
    float32 later), so it is tried once on a small fixed input rather than assumed."""
    if _GROUPED_MM is None:
        return False
    x = torch.linspace(-1, 1, 6 * 16, device=device).view(6, 16).to(dtype)
    w = torch.linspace(-1, 1, 3 * 8 * 16, device=device).view(3, 8, 16).to(dtype).transpose(1, 2)  # as _experts
    try:
        got = _GROUPED_MM(x, w, offs=torch.tensor([2, 2, 6], dtype=torch.int32, device=device))
    except (RuntimeError, NotImplementedError):
        return False
    want = torch.cat([x[:2].float() @ w[0].float(), x[2:].float() @ w[2].float()])
    return torch.allclose(got.float(), want, rtol=2e-2, atol=2e-2)


def _experts(x: torch.Tensor, expert: torch.Tensor, counts: torch.Tensor, gate_up: torch.Tensor,
             down: torch.Tensor) -> torch.Tensor:
    """SwiGLU experts on rows ``x`` sorted by ``expert`` (``counts`` rows each): grouped matrix products where torch
    has them for this device and dtype and the row strides meet their 16-byte alignment; else batched matrix
    products over every expert with its rows padded to the largest count, which any torch runs: one host read of
    that count and a few launches per call, where a loop over experts would launch three products per expert."""
    inner = down.shape[-1]
    aligned = all(size * x.element_size() % 16 == 0 for size in (x.shape[-1], inner))
    if aligned and _grouped_mm_runs(x.device, x.dtype):
        offs = counts.cumsum(0).to(torch.int32)
        gate, up = _GROUPED_MM(x, gate_up.transpose(1, 2), offs=offs).split(inner, dim=-1)
        return _GROUPED_MM(F.silu(gate) * up, down.transpose(1, 2), offs=offs)
    rank = torch.arange(len(expert), device=x.device) - (counts.cumsum(0) - counts)[expert]
    padded = x.new_zeros(len(counts), int(counts.max()), x.shape[-1])
    padded[expert, rank] = x
    gate, up = torch.bmm(padded, gate_up.transpose(1, 2)).split(inner, dim=-1)
    return torch.bmm(F.silu(gate) * up, down.transpose(1, 2))[expert, rank]


class Attention(nn.Module):
    def __init__(self, cfg: LLaDA2Config):
        super().__init__()
        self.cfg = cfg
        d = cfg.head_dim
        self.query_key_value = nn.Linear(cfg.hidden_size, (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * d,
                                         bias=cfg.use_qkv_bias)
        self.dense = nn.Linear(cfg.num_attention_heads * d, cfg.hidden_size, bias=cfg.use_bias)
        if cfg.use_qk_norm:
            self.query_layernorm = RMSNorm(d, cfg.rms_norm_eps)
            self.key_layernorm = RMSNorm(d, cfg.rms_norm_eps)

    def forward(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor | None,
                past: KV | None = None) -> tuple[torch.Tensor, KV]:
        """Attention of ``x`` over ``past`` keys/values (a cached context) and its own; returns its own too."""
        cfg = self.cfg
        b, n, _ = x.shape
        qkv = self.query_key_value(x).view(b, n, -1, cfg.head_dim).transpose(1, 2)
        q, k, v = qkv.split([cfg.num_attention_heads, cfg.num_key_value_heads, cfg.num_key_value_heads], dim=1)
        if cfg.use_qk_norm:
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q, k = _rotate(q, *rotary), _rotate(k, *rotary)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2))
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask,
                                             enable_gqa=cfg.num_key_value_heads != cfg.num_attention_heads)
        return self.dense(out.transpose(1, 2).reshape(b, n, -1)), (k, v)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding on the first ``cos.shape[-1]`` channels of each head (rotate-half convention)."""
    dim = cos.shape[-1]
    rot, rest = x[..., :dim], x[..., dim:]
    half = torch.cat([-rot[..., dim // 2 :], rot[..., : dim // 2]], dim=-1)
    return torch.cat([rot * cos + half * sin, rest], dim=-1)


class Layer(nn.Module):
    def __init__(self, cfg: LLaDA2Config, index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.attention = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = (MoE(cfg) if cfg.num_experts and index >= cfg.first_k_dense_replace
                    else MLP(cfg.hidden_size, cfg.intermediate_size))

    def forward(self, x, rotary, mask, past: KV | None = None) -> tuple[torch.Tensor, KV]:
        attended, kv = self.attention(self.input_layernorm(x), rotary, mask, past)
        x = x + attended
        return x + self.mlp(self.post_attention_layernorm(x)), kv


class Backbone(nn.Module):
    def __init__(self, cfg: LLaDA2Config):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Layer(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


@dataclass
class Output:
    """What callers of the checkpoint's own class read: ``.logits``."""

    logits: torch.Tensor


class LLaDA2(nn.Module):
    """``model(input_ids, attention_mask=None, position_ids=None).logits`` like the checkpoint's LLaDA2MoeModelLM."""

    def __init__(self, cfg: LLaDA2Config):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        rope_dim = int(cfg.head_dim * cfg.partial_rotary_factor)
        inv = 1.0 / cfg.rope_theta ** (torch.arange(0, rope_dim, 2, dtype=torch.float32) / rope_dim)
        self.register_buffer("inv_freq", inv, persistent=False)

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, context: list[KV] | None = None,
                keep: list[KV] | None = None, **_: Any) -> Output:
        """Logits of ``input_ids``; with ``context`` (per layer, the keys/values of earlier positions) every layer
        also attends to those, and ``keep`` (a list) receives this call's keys/values per layer. A 4-D mask then
        spans context + input keys."""
        b, n = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(n, device=input_ids.device).unsqueeze(0).expand(b, n)
        freqs = position_ids.float().unsqueeze(-1) * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)
        x = self.model.word_embeddings(input_ids)
        rotary = (emb.cos().to(x.dtype).unsqueeze(1), emb.sin().to(x.dtype).unsqueeze(1))
        mask = _sdpa_mask(attention_mask, n)
        for i, layer in enumerate(self.model.layers):
            x, kv = layer(x, rotary, mask, None if context is None else context[i])
            if keep is not None:
                keep.append(kv)
        return Output(self.lm_head(self.model.norm(x)).float())


def _sdpa_mask(attention_mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """A boolean SDPA mask: 2-D ``[B, L]`` key padding (None when nothing is padded), 4-D used as given."""
    if attention_mask is None:
        return None
    if attention_mask.dim() == 4:
        return attention_mask.bool()
    if bool(attention_mask.bool().all()):
        return None
    return attention_mask.bool()[:, None, None, :].expand(-1, 1, length, -1)


def build_llada2(cfg: LLaDA2Config, weights: dict[str, torch.Tensor] | None, device: torch.device | str,
                 dtype: torch.dtype) -> LLaDA2:
    """A LLaDA2 holding exactly ``weights`` (checkpoint names; strict), or randomly initialised when None."""
    model = LLaDA2(cfg)
    if weights is not None:
        if cfg.tie_word_embeddings and "lm_head.weight" not in weights:
            weights["lm_head.weight"] = weights["model.word_embeddings.weight"]
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ConfigError(f"LLaDA2 weights do not fit the native module: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}; this checkpoint's layout is not LLaDA2.0 / 2.1's")
    return model.to(device=device, dtype=dtype).eval()


def load_llada2(model_dir: Path, config: dict[str, Any], device: torch.device | str, dtype: torch.dtype) -> LLaDA2:
    """The native LLaDA2 of a checkpoint directory (config.json + safetensors), in ``dtype`` on ``device``."""
    cfg = LLaDA2Config.from_dict(config)
    return build_llada2(cfg, load_safetensors(model_dir, device), device, dtype)
