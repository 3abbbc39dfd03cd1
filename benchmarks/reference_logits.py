"""Native LLaDA / Dream logits against the official modeling code on tiny configs: prints max |logit difference|.

The official files stay out of the repository, in ignored folders:
* LLaDA: Fast-dLLM's pinned copy (``python benchmarks/text_throughput.py --fetch`` -> .reference/loops/fast_dllm_model)
  and, if present, the hub copy in .reference/llada (``modeling_llada.py``, ``configuration_llada.py`` of
  GSAI-ML/LLaDA-8B-Instruct);
* Dream: .reference/dream (``modeling_dream.py``, ``configuration_dream.py``, ``generation_utils.py``,
  ``tokenization_dream.py`` of Dream-org/Dream-v0-Instruct-7B).

  python benchmarks/reference_logits.py llada
  REFVENV/bin/python benchmarks/reference_logits.py dream-dump /tmp/dream_ref     # a transformers 4.46.2 venv
  python benchmarks/reference_logits.py dream-compare /tmp/dream_ref

Dream's official code does not run under transformers 5 (``ROPE_INIT_FUNCTIONS["default"]`` is gone), hence the dump
in an old-transformers venv and the comparison in the project's. Random weights (std 0.3, norms around 1) so that
logits are far from uniform; float32 unless stated, padded rows compared on their real positions.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
LLADA_SOURCES = {"hub": ROOT / ".reference" / "llada", "fast_dllm": ROOT / ".reference" / "loops" / "fast_dllm_model"}
DREAM_SOURCE = ROOT / ".reference" / "dream"


LLADA = {"activation_type": "silu", "alibi": False, "architectures": ["LLaDAModelLM"], "attention_dropout": 0.0,
         "attention_layer_norm": False, "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig",
                                                     "AutoModel": "modeling_llada.LLaDAModelLM"},
         "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 64,
         "embedding_dropout": 0.0, "embedding_size": 160, "eos_token_id": 126081, "flash_attention": False,
         "include_bias": False, "include_qkv_bias": False, "init_device": "meta", "init_fn": "mitchell",
         "input_emb_norm": False, "layer_norm_type": "rms", "layer_norm_with_affine": True, "mask_token_id": 126336,
         "max_sequence_length": 256, "mlp_hidden_size": 96, "model_type": "llada", "n_heads": 4, "n_kv_heads": 4,
         "n_layers": 2, "pad_token_id": 126081, "residual_dropout": 0.0, "rms_norm_eps": 1e-05, "rope": True,
         "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False, "use_cache": False,
         "vocab_size": 160, "weight_tying": False}
DREAM = {"architectures": ["DreamModel"], "attention_dropout": 0.0,
         "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
         "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 64,
         "intermediate_size": 96, "mask_token_id": 150, "max_position_embeddings": 256, "model_type": "Dream",
         "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pad_token_id": 151,
         "rms_norm_eps": 1e-06, "rope_scaling": None, "rope_theta": 1000000.0, "tie_word_embeddings": False,
         "use_sliding_window": False, "vocab_size": 160}


def checkpoint_dir(config: dict, code: Path) -> Path:
    folder = Path(tempfile.mkdtemp())
    for f in code.glob("*.py"):
        shutil.copy(f, folder / f.name)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def randomise(model: torch.nn.Module) -> None:
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(1.0, 0.1) if "norm" in name else p.normal_(0.0, 0.3)


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.ones(3, 17, dtype=torch.long)
    mask[1, :4] = 0
    mask[2, :7] = 0
    return torch.randint(0, 150, (3, 17)), mask


def check_llada(name: str, code: Path) -> None:
    from transformers import AutoConfig, AutoModel

    from mdsample.models.llada import load_llada

    folder = checkpoint_dir(LLADA, code)
    ref = AutoModel.from_config(AutoConfig.from_pretrained(folder, trust_remote_code=True), trust_remote_code=True)
    ref.config.use_cache = False  # transformers 5 drops this key from configs; the model's forward reads it
    randomise(ref)
    ref.eval().save_pretrained(folder)
    x, mask = inputs()
    with torch.no_grad():
        native = load_llada(folder, LLADA, "cpu", torch.float32)
        truth = ref(x, use_cache=False).logits
        print(f"LLaDA ({name}) fp32 no mask:", (native(x).logits - truth).abs().max().item(), "scale",
              truth.abs().max().item())
        real = mask.bool()
        masked = ref(x, attention_mask=mask, use_cache=False).logits
        padded = native(x, attention_mask=mask).logits
        print(f"LLaDA ({name}) fp32 padded (real rows):", (padded - masked)[real].abs().max().item())
        ref_bf16 = ref.to(torch.bfloat16)(x, use_cache=False).logits.float()
        native_bf16 = load_llada(folder, LLADA, "cpu", torch.bfloat16)(x).logits.float()
        print(f"LLaDA ({name}) bf16 vs fp32 truth: official", (ref_bf16 - truth).abs().max().item(), "native",
              (native_bf16 - truth).abs().max().item())


def dump_dream(out: Path) -> None:
    from transformers import AutoConfig, AutoModel

    folder = checkpoint_dir(DREAM, DREAM_SOURCE)
    ref = AutoModel.from_config(AutoConfig.from_pretrained(folder, trust_remote_code=True), trust_remote_code=True,
                                torch_dtype=torch.float32)
    randomise(ref)
    ref.eval().save_pretrained(out, safe_serialization=True)
    for f in DREAM_SOURCE.glob("*.py"):
        shutil.copy(f, out / f.name)
    x, mask = inputs()
    positions = mask.cumsum(-1) - 1
    positions.masked_fill_(mask == 0, 1)  # Dream's generation code
    square = torch.logical_and(mask.bool()[:, None, None, :], mask.bool()[:, None, :, None])
    with torch.no_grad():
        bf16 = AutoModel.from_pretrained(out, trust_remote_code=True, torch_dtype=torch.bfloat16).eval()
        torch.save({"x": x, "mask": mask, "full": ref(x, "full", None).logits,
                    "padded": ref(x, square, positions).logits, "full_bf16": bf16(x, "full", None).logits.float()},
                   out / "reference_logits.pt")
    (out / "config.json").write_text(json.dumps(DREAM))


def compare_dream(out: Path) -> None:
    from mdsample.models.dream import dream_positions, load_dream

    r = torch.load(out / "reference_logits.pt")
    real = r["mask"].bool()
    with torch.no_grad():
        native = load_dream(out, DREAM, "cpu", torch.float32)
        print("Dream fp32 no mask:", (native(r["x"]).logits - r["full"]).abs().max().item(), "scale",
              r["full"].abs().max().item())
        padded = native(r["x"], attention_mask=r["mask"], positions=dream_positions(r["mask"])).logits
        print("Dream fp32 padded (real rows):", (padded - r["padded"])[real].abs().max().item())
        native_bf16 = load_dream(out, DREAM, "cpu", torch.bfloat16)(r["x"]).logits.float()
        print("Dream bf16 vs fp32 truth: official", (r["full_bf16"] - r["full"]).abs().max().item(), "native",
              (native_bf16 - r["full"]).abs().max().item())


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "llada":
        found = {name: code for name, code in LLADA_SOURCES.items() if (code / "modeling_llada.py").is_file()}
        if not found:
            raise SystemExit(f"no LLaDA modeling code in {', '.join(map(str, LLADA_SOURCES.values()))}")
        for name, code in found.items():
            check_llada(name, code)
    elif command == "dream-dump":
        dump_dream(Path(sys.argv[2]))
    else:
        compare_dream(Path(sys.argv[2]))
