"""Tiny checkpoints for the adapter tests: tokenizers and remote-code model directories built here, nothing downloaded.

This file is also the *remote code* of the tiny LLaDA- and Dream-like checkpoints: ``write_remote_checkpoint`` copies
it into a model directory as ``modeling_*.py`` and points ``config.json``'s ``auto_map`` at its classes, exactly as
the released checkpoints ship ``modeling_llada.py`` / ``modeling_dream.py``. So it imports only torch, transformers
and tokenizers. ``LLaDAModelLM`` is a small bidirectional LLaMA-style model of our own with LLaDA's config fields,
parameter names and ``forward(input_ids, attention_mask=None, use_cache=...) -> .logits``; ``DreamModel`` is
transformers' Qwen2 run bidirectionally with Dream's ``forward(input_ids, attention_mask, position_ids)`` (the
attention mask "full" or ``[B, 1, L, L]``), returning unshifted logits like Dream's own code. (No tests here.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from tokenizers.pre_tokenizers import ByteLevel
from torch import nn
from torch.nn import functional as F
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast, MaskedLMOutput

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "park", "big", "red", "is", "and"]
LLADA_SPECIALS = ["<unk>", "<|startoftext|>", "<|endoftext|>", "<|eot_id|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|mdm_mask|>", "user", "assistant"]
LLADA_CHAT = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>"
              "{{ m['content'] }}<|eot_id|>{% endfor %}"
              "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}")
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def word_tokenizer(tokens: list[str], **specials: str) -> PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer whose ids are the positions in ``tokens``."""
    inner = Tokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=specials["unk_token"]))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=inner, **specials)


def llada_tokenizer() -> PreTrainedTokenizerFast:
    """LLaDA-like: BOS, EOS (= pad), end-of-turn, header tokens, ``<|mdm_mask|>`` (id 6) and a chat template."""
    tok = word_tokenizer(LLADA_SPECIALS + WORDS, unk_token="<unk>", bos_token="<|startoftext|>",
                         eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                         additional_special_tokens=["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
                                                    "<|mdm_mask|>"])
    tok.chat_template = LLADA_CHAT
    return tok


def bert_tokenizer() -> PreTrainedTokenizerFast:
    """BERT-like: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then the words; no chat template."""
    return word_tokenizer(BERT_SPECIALS + WORDS, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                          sep_token="[SEP]", mask_token="[MASK]")


def write_dream_tokenizer(model_dir: Path) -> dict[str, int]:
    """Dream's tokenizer file set: Qwen2 byte-level BPE ``vocab.json`` + ``merges.txt`` and a ``tokenizer_config``
    naming a remote ``DreamTokenizer`` class. Returns the special ids."""
    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    for merged in ("Ġt", "Ġth", "Ġthe", "Ġc", "Ġca", "Ġcat"):
        vocab[merged] = len(vocab)
    (model_dir / "vocab.json").write_text(json.dumps(vocab))
    (model_dir / "merges.txt").write_text("#version: 0.2\nĠ t\nĠt h\nĠth e\nĠ c\nĠc a\nĠca t\n")
    specials = {t: len(vocab) + i for i, t in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"])}
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": True} for t, i in specials.items()}
    chat = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    (model_dir / "tokenizer_config.json").write_text(json.dumps({
        "added_tokens_decoder": added, "auto_map": {"AutoTokenizer": ["tokenization_dream.DreamTokenizer", None]},
        "tokenizer_class": "DreamTokenizer", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "mask_token": "<|mask|>", "bos_token": None, "unk_token": None, "chat_template": chat}))
    (model_dir / "tokenization_dream.py").write_text(
        "from transformers import Qwen2Tokenizer\n\n\nclass DreamTokenizer(Qwen2Tokenizer):\n    pass\n")
    return specials


class LLaDAConfig(PretrainedConfig):
    model_type = "llada"

    def __init__(self, d_model: int = 32, n_heads: int = 4, n_kv_heads: int | None = None, n_layers: int = 2,
                 mlp_hidden_size: int = 48, vocab_size: int = 32, embedding_size: int | None = None,
                 rope_theta: float = 500000.0, rms_norm_eps: float = 1e-5, weight_tying: bool = False,
                 block_type: str = "llama", layer_norm_type: str = "rms", activation_type: str = "silu",
                 rope: bool = True, rope_full_precision: bool = True, **kwargs):
        self.d_model, self.n_heads, self.n_kv_heads, self.n_layers = d_model, n_heads, n_kv_heads, n_layers
        self.mlp_hidden_size, self.vocab_size, self.embedding_size = mlp_hidden_size, vocab_size, embedding_size
        self.rope_theta, self.rms_norm_eps, self.weight_tying = rope_theta, rms_norm_eps, weight_tying
        self.block_type, self.layer_norm_type, self.activation_type = block_type, layer_norm_type, activation_type
        self.rope, self.rope_full_precision = rope, rope_full_precision
        super().__init__(**kwargs)


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        return self.weight * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    h = x.float()
    h1, h2 = h.chunk(2, dim=-1)
    return (h * cos + torch.cat([-h2, h1], dim=-1) * sin).to(x.dtype)


class LLaDABlock(nn.Module):
    def __init__(self, c: LLaDAConfig):
        super().__init__()
        self.heads, self.kv_heads, self.dim = c.n_heads, c.n_kv_heads or c.n_heads, c.d_model // c.n_heads
        self.attn_norm, self.ff_norm = RMSNorm(c.d_model, c.rms_norm_eps), RMSNorm(c.d_model, c.rms_norm_eps)
        self.q_proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.k_proj = nn.Linear(c.d_model, self.kv_heads * self.dim, bias=False)
        self.v_proj = nn.Linear(c.d_model, self.kv_heads * self.dim, bias=False)
        self.attn_out = nn.Linear(c.d_model, c.d_model, bias=False)
        self.ff_proj = nn.Linear(c.d_model, c.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(c.d_model, c.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(c.mlp_hidden_size, c.d_model, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, d = x.shape
        h = self.attn_norm(x)
        q = rope(self.q_proj(h).view(b, t, self.heads, self.dim).transpose(1, 2), cos, sin)
        k = rope(self.k_proj(h).view(b, t, self.kv_heads, self.dim).transpose(1, 2), cos, sin)
        v = self.v_proj(h).view(b, t, self.kv_heads, self.dim).transpose(1, 2)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.attn_out(a.transpose(1, 2).reshape(b, t, d))
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))


class LLaDAModelLM(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"

    def __init__(self, config: LLaDAConfig):
        super().__init__(config)
        rows = config.embedding_size or config.vocab_size
        parts = {"wte": nn.Embedding(rows, config.d_model), "ln_f": RMSNorm(config.d_model, config.rms_norm_eps),
                 "blocks": nn.ModuleList(LLaDABlock(config) for _ in range(config.n_layers))}
        if not config.weight_tying:
            parts["ff_out"] = nn.Linear(config.d_model, rows, bias=False)
        self.model = nn.Module()
        self.model.transformer = nn.ModuleDict(parts)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.5)
        elif isinstance(module, RMSNorm):
            nn.init.normal_(module.weight, mean=1.0, std=0.2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, use_cache: bool = False,
                **kwargs) -> CausalLMOutputWithPast:
        c, tr = self.config, self.model.transformer
        dim = c.d_model // c.n_heads
        inv_freq = 1.0 / c.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        angles = torch.outer(torch.arange(input_ids.shape[1], dtype=torch.float32), inv_freq)
        angles = torch.cat([angles, angles], dim=-1).to(input_ids.device)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        x = tr["wte"](input_ids)
        for block in tr["blocks"]:
            x = block(x, angles.cos(), angles.sin(), mask)
        x = tr["ln_f"](x)
        return CausalLMOutputWithPast(logits=F.linear(x, tr["wte"].weight) if c.weight_tying else tr["ff_out"](x))


class DreamConfig(Qwen2Config):
    model_type = "Dream"


class DreamModel(Qwen2ForCausalLM):
    config_class = DreamConfig

    def __init__(self, config: DreamConfig):
        super().__init__(config)
        for layer in self.model.layers:
            layer.self_attn.is_causal = False

    def forward(self, input_ids: torch.Tensor, attention_mask=None, position_ids=None, **kwargs) -> MaskedLMOutput:
        mask = attention_mask if isinstance(attention_mask, torch.Tensor) else None
        out = super().forward(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False)
        return MaskedLMOutput(logits=out.logits)


def write_remote_checkpoint(model: PreTrainedModel, model_dir: Path, module: str, **config_updates) -> Path:
    """Save ``model`` with this file as its remote code ``module``.py and an ``auto_map`` pointing at it."""
    model.save_pretrained(model_dir)
    shutil.copy(__file__, model_dir / f"{module}.py")
    config = json.loads((model_dir / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": f"{module}.{type(model.config).__name__}",
                          "AutoModel": f"{module}.{type(model).__name__}"}
    config.update(config_updates)
    (model_dir / "config.json").write_text(json.dumps(config))
    return model_dir


def tiny_llada_dir(model_dir: Path, seed: int = 0, **config_updates) -> Path:
    """A LLaDA-like checkpoint (remote code, safetensors, LLaDA names, mask id 6) with the LLaDA-like tokenizer."""
    torch.manual_seed(seed)
    tokenizer = llada_tokenizer()
    model = LLaDAModelLM(LLaDAConfig(vocab_size=len(tokenizer), n_kv_heads=2, mask_token_id=6, eos_token_id=2,
                                     pad_token_id=2))
    tokenizer.save_pretrained(model_dir)
    return write_remote_checkpoint(model, model_dir, "modeling_llada", **config_updates)


def tiny_dream_dir(model_dir: Path, seed: int = 0) -> Path:
    """A Dream-like checkpoint (remote code, Qwen2 names, biased q/k/v, GQA) with Dream's tokenizer file set."""
    torch.manual_seed(seed)
    model_dir.mkdir(parents=True, exist_ok=True)
    specials = write_dream_tokenizer(model_dir)
    config = DreamConfig(vocab_size=max(specials.values()) + 1, hidden_size=32, intermediate_size=48,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rope_theta=10000.0, tie_word_embeddings=False, attn_implementation="sdpa")
    model = DreamModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(1.0 if "norm" in name else 0.0, 0.2 if "norm" in name else 0.5)
    return write_remote_checkpoint(model, model_dir, "modeling_dream", mask_token_id=specials["<|mask|>"],
                                   pad_token_id=specials["<|endoftext|>"], eos_token_id=specials["<|endoftext|>"])
