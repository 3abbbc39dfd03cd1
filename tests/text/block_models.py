"""Tiny block-diffusion checkpoints built here from configs (nothing downloaded): DiffusionGemma through transformers'
own classes, LLaDA2 through mdsample's native module, each saved with a word-level tokenizer and a chat template as a
``save_pretrained`` directory that ``load_text_model`` reads like a hub snapshot. (No tests here.)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from mdsample.models.llada2 import LLaDA2Config, build_llada2
from tests.text.test_adapters_support import WORDS, word_tokenizer

GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "user", "model"]
GEMMA_CHAT = ("{{ bos_token }}{% for m in messages %}<start_of_turn> {{ m['role'] }} {{ m['content'] }} <end_of_turn> "
              "{% endfor %}{% if add_generation_prompt %}<start_of_turn> model {% endif %}")
LLADA2_SPECIALS = ["<|endoftext|>", "<|startoftext|>", "<unk>", "<role>", "</role>", "HUMAN", "ASSISTANT", "<|mask|>"]
LLADA2_CHAT = ("{% for m in messages %}<role> {{ 'HUMAN' if m['role'] == 'user' else 'ASSISTANT' }} </role> "
               "{{ m['content'] }} {% endfor %}{% if add_generation_prompt %}<role> ASSISTANT </role> {% endif %}")
EXTRA = [f"w{i}" for i in range(40)]
"""More words, so that a random model's outputs spread over a vocabulary of a realistic shape."""


def gemma_tokenizer():
    tok = word_tokenizer(GEMMA_SPECIALS + WORDS + EXTRA, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>",
                         bos_token="<bos>", additional_special_tokens=["<start_of_turn>", "<end_of_turn>"])
    tok.chat_template = GEMMA_CHAT
    return tok


def tiny_gemma(vocab_size: int, canvas_length: int = 8, seed: int = 0, sharpness: float = 40.0):
    """A random DiffusionGemmaForBlockDiffusion of ~0.5M parameters (MoE text tower, a one-layer vision tower: the
    default vision config alone has ~160M). ``sharpness`` scales the LM head so that entropies span the range where
    the entropy bound and the adaptive stop decide something."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, Gemma4VisionConfig
    from transformers.models.diffusion_gemma.configuration_diffusion_gemma import DiffusionGemmaTextConfig

    text = DiffusionGemmaTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=16, max_position_embeddings=256,
        layer_types=["sliding_attention", "full_attention"], num_experts=4, top_k_experts=2, moe_intermediate_size=16,
        pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=1, head_dim=8)
    config = DiffusionGemmaConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                  canvas_length=canvas_length, boi_token_id=vocab_size - 3,
                                  eoi_token_id=vocab_size - 2, image_token_id=vocab_size - 1)
    torch.manual_seed(seed)
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(sharpness)
    return model


def tiny_gemma_dir(path: Path, **kw) -> Path:
    tok = gemma_tokenizer()
    model = tiny_gemma(len(tok), **kw)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def llada2_tokenizer():
    tok = word_tokenizer(LLADA2_SPECIALS + WORDS + EXTRA, unk_token="<unk>", eos_token="<|endoftext|>",
                         pad_token="<|endoftext|>", bos_token="<|startoftext|>", mask_token="<|mask|>",
                         additional_special_tokens=["<role>", "</role>"])
    tok.chat_template = LLADA2_CHAT
    return tok


LLADA2_FIELDS = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 8, "num_experts": 8, "num_experts_per_tok": 2,
                 "moe_intermediate_size": 16, "num_shared_experts": 1, "n_group": 2, "topk_group": 1,
                 "first_k_dense_replace": 1, "routed_scaling_factor": 2.5, "partial_rotary_factor": 0.5,
                 "rope_theta": 600000.0, "rms_norm_eps": 1e-6, "use_qk_norm": True, "norm_topk_prob": True}


def tiny_llada2(vocab_size: int, seed: int = 0, sharpness: float = 6.0):
    """A random native LLaDA2 (MoE in its second layer) whose LM head is scaled so confidences vary widely."""
    torch.manual_seed(seed)
    model = build_llada2(LLaDA2Config(vocab_size=vocab_size, **LLADA2_FIELDS), None, "cpu", torch.float32)
    with torch.no_grad():
        model.model.word_embeddings.weight.normal_(0.0, 1.0)
        model.lm_head.weight.mul_(sharpness)
        for layer in model.model.layers:  # sharp, position-dependent attention: masked slots differ from each other
            layer.attention.query_key_value.weight.mul_(4.0)
            layer.attention.dense.weight.mul_(3.0)
    return model


def tiny_llada2_dir(path: Path, **kw) -> Path:
    """config.json as LLaDA2 checkpoints write it (model_type llada2_moe), model.safetensors, tokenizer files."""
    tok = llada2_tokenizer()
    model = tiny_llada2(len(tok), **kw)
    path.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "llada2_moe", "architectures": ["LLaDA2MoeModelLM"], "vocab_size": len(tok),
              "mask_token_id": tok.mask_token_id, "hidden_act": "silu", "score_function": "sigmoid",
              "max_position_embeddings": 512, **LLADA2_FIELDS}
    (path / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))
    tok.save_pretrained(path)
    return path


def forbid_token(model: torch.nn.Module, token: int) -> None:
    """Make the LM head never propose ``token`` (its logit -1e4, probability exactly 0 in float32), as a trained model
    never proposes the mask token. mdsample's loop forbids the mask token itself and diffusers' scheduler does not,
    so a random model must not put mass on it for the two to see the same probabilities."""

    def hook(_module, _inputs, output):
        output[..., token] = -1e4
        return output

    model.lm_head.register_forward_hook(hook)
