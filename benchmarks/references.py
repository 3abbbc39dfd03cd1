"""The reference implementations the performance benchmarks time against, pinned by commit and sha256.

They are public code, not the project's: they are fetched at benchmark time into the folder ``.reference/loops``
(``python benchmarks/text_throughput.py --fetch`` where there is network, or ``--fetch-from`` git mirrors of the
pinned repositories; the GPU machine has none, so carry the folder along) and never committed. Two kinds:

* the decoding loops (LLaDA's ``generate``, KLASS's ``stable_confident_decode``, Fast-dLLM's prefix / dual cache
  loops): only their functions are executed, verbatim, without the files' script-level imports of tokenizers and
  remote model classes that only their ``main`` uses;
* LLaDA's modeling code as Fast-dLLM ships it (``llada/model``: the official ``modeling_llada.py`` plus the
  ``past_key_values`` / ``replace_position`` support its cache loops call), loaded the way users load it, through
  ``trust_remote_code`` from a local folder.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / ".reference" / "loops"
FAST_DLLM = ("NVlabs/Fast-dLLM", "24cc59e75f20a6384bae8c905965bb090b96388e")
REFERENCES = {
    "llada_generate.py": ("ML-GSAI/LLaDA", "b7e6c3565f194352da44b38dd12b6970597309f3", "generate.py",
                          "a95b1c67d2f9d6a80f7a2d046d59be215fd0cf010c771e9ec07f5b80eae7a9c7"),
    "klass_llada.py": ("shkim0116/KLASS", "ad87ecbe9fdef4a6e93701afbc150cb9213fbcd7", "src/model/llada_klass.py",
                       "1c68212915214f6e3fa1d25a457c91b086c2f18a9ae6c69f83ffc0715716985e"),
    "fast_dllm_generate.py": (*FAST_DLLM, "llada/generate.py",
                              "dcfa589b591175a6e4f51d369245cdfba1cdb482d2d9780a8ef1caf54496c359"),
    "fast_dllm_model/configuration_llada.py": (*FAST_DLLM, "llada/model/configuration_llada.py",
                                               "5a58ffb848ee7fa18c34ca9289d13aaec062d40bae694caa69552689417f7b06"),
    "fast_dllm_model/modeling_llada.py": (*FAST_DLLM, "llada/model/modeling_llada.py",
                                          "570401f87af8b13854e07f9b231b0ac53a2ce8ef58fa1ee1a52f5f67506e902f"),
}
"""file under .reference/loops -> (repository, commit, path, sha256 of the file)."""

LLADA_8B_CONFIG = {
    "activation_type": "silu", "alibi": False, "alibi_bias_max": 8.0, "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0, "attention_layer_norm": False, "attention_layer_norm_with_affine": True,
    "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModel": "modeling_llada.LLaDAModelLM"},
    "bias_for_layer_norm": False, "block_group_size": 1, "block_type": "llama", "d_model": 4096,
    "embedding_dropout": 0.0, "embedding_size": 126464, "eos_token_id": 126081, "flash_attention": False,
    "include_bias": False, "include_qkv_bias": False, "init_cutoff_factor": None, "init_device": "meta",
    "init_fn": "mitchell", "init_std": 0.02, "input_emb_norm": False, "layer_norm_type": "rms",
    "layer_norm_with_affine": True, "mask_token_id": 126336, "max_sequence_length": 4096, "mlp_hidden_size": 12288,
    "mlp_ratio": 4, "model_type": "llada", "multi_query_attention": None, "n_heads": 32, "n_kv_heads": 32,
    "n_layers": 32, "pad_token_id": 126081, "precision": "amp_bf16", "residual_dropout": 0.0, "rms_norm_eps": 1e-05,
    "rope": True, "rope_full_precision": True, "rope_theta": 500000.0, "scale_logits": False, "use_cache": False,
    "vocab_size": 126464, "weight_tying": False,
}
"""GSAI-ML/LLaDA-8B-Instruct's config.json; ``llada_reference_model`` overrides the shape fields."""


def fetch() -> None:
    """Download the reference files at their pinned commits into .reference/loops and check their sha256."""
    for name, (repo, commit, path, digest) in REFERENCES.items():
        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        data = urllib.request.urlopen(url, timeout=60).read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise SystemExit(f"{url}: sha256 differs from the pinned {digest}")
        (REFERENCE_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (REFERENCE_DIR / name).write_bytes(data)
        print(f"fetched {url} -> {REFERENCE_DIR / name}")


def fetch_from_mirrors(mirrors: Path) -> None:
    """``fetch`` without network: the pinned files out of git mirrors ``mirrors/owner+name/repo`` (bare clones that
    hold the pinned commits), sha256 checked the same way."""
    for name, (repo, commit, path, digest) in REFERENCES.items():
        git_dir = mirrors / repo.replace("/", "+") / "repo"
        data = subprocess.run(["git", "-C", str(git_dir), "show", f"{commit}:{path}"], capture_output=True,
                              check=True).stdout
        if hashlib.sha256(data).hexdigest() != digest:
            raise SystemExit(f"{git_dir} {commit}:{path}: sha256 differs from the pinned {digest}")
        (REFERENCE_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (REFERENCE_DIR / name).write_bytes(data)
        print(f"copied {repo}@{commit[:12]}:{path} -> {REFERENCE_DIR / name}")


def pinned(name: str) -> bytes:
    """The bytes of a fetched reference file; exits with the command to run when it is missing or not pinned."""
    path = REFERENCE_DIR / name
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `python benchmarks/text_throughput.py --fetch` (with network)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != REFERENCES[name][3]:
        raise SystemExit(f"{path} is not the pinned file; fetch it again")
    return data


def load_functions(name: str, wanted: tuple[str, ...]) -> dict:
    """The functions ``wanted`` of a fetched reference file, executed verbatim in a namespace with the modules they
    use (torch, numpy, F, math, os, json); the file's other top-level statements are left out."""
    tree = ast.parse(pinned(name))
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    namespace = {"torch": torch, "np": np, "F": F, "math": math, "os": os, "json": json}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(REFERENCE_DIR / name), "exec"), namespace)  # noqa: S102
    return {k: namespace[k] for k in wanted}


def load_loops() -> dict:
    """name -> the reference loop's function."""
    shared = ("add_gumbel_noise", "get_num_transfer_tokens")
    fast = load_functions("fast_dllm_generate.py", (*shared, "get_transfer_index", "generate_with_prefix_cache",
                                                    "generate_with_dual_cache"))
    return {
        "llada_generate": load_functions("llada_generate.py", (*shared, "generate"))["generate"],
        "klass": load_functions("klass_llada.py", (*shared, "stable_confident_decode"))["stable_confident_decode"],
        "fast_dllm_prefix": fast["generate_with_prefix_cache"],
        "fast_dllm_dual": fast["generate_with_dual_cache"],
    }


def sdp_flags() -> tuple[bool, bool]:
    """PyTorch's global (flash, memory-efficient) SDPA switches."""
    return torch.backends.cuda.flash_sdp_enabled(), torch.backends.cuda.mem_efficient_sdp_enabled()


def set_sdp_flags(flags: tuple[bool, bool]) -> None:
    torch.backends.cuda.enable_flash_sdp(flags[0])
    torch.backends.cuda.enable_mem_efficient_sdp(flags[1])


@contextlib.contextmanager
def reference_sdp(model) -> None:
    """Run under the SDPA switches the reference model's constructor set for its process (it turns the
    memory-efficient kernel off), and give the rest of the benchmark its own switches back afterwards."""
    ours = sdp_flags()
    set_sdp_flags(model.sdp_flags)
    try:
        yield
    finally:
        set_sdp_flags(ours)


def llada_reference_model(layers: int, hidden: int, heads: int, kv_heads: int, mlp: int, vocab: int,
                          device: torch.device, dtype: torch.dtype):
    """Fast-dLLM's LLaDAModelLM of this shape, loaded through ``trust_remote_code`` from a local folder, with random
    weights (normal, std 0.02; norm weights, the only vectors, 1). Its constructor's global SDPA switches are
    recorded on the model as ``sdp_flags`` and undone for the caller (``reference_sdp`` reapplies them)."""
    from transformers import AutoConfig, AutoModel

    config = {**LLADA_8B_CONFIG, "d_model": hidden, "n_heads": heads, "n_kv_heads": kv_heads, "n_layers": layers,
              "mlp_hidden_size": mlp, "vocab_size": vocab, "embedding_size": vocab}
    folder = Path(tempfile.mkdtemp(prefix="fast_dllm_model_"))
    for name in ("configuration_llada.py", "modeling_llada.py"):
        (folder / name).write_bytes(pinned(f"fast_dllm_model/{name}"))
    (folder / "config.json").write_text(json.dumps(config))
    ours = sdp_flags()
    try:
        model = AutoModel.from_config(AutoConfig.from_pretrained(folder, trust_remote_code=True),
                                      trust_remote_code=True, dtype=dtype)
        model.sdp_flags = sdp_flags()
        model.config.use_cache = False  # transformers 5 drops this key from configs; the model's forward reads it
    finally:
        set_sdp_flags(ours)
        shutil.rmtree(folder, ignore_errors=True)
    model = model.to(device).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0) if p.ndim == 1 else p.normal_(0.0, 0.02)
    return model
