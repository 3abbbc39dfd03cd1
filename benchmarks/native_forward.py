"""One forward of the native LLaDA / Dream module (models/lean.py) against a minimal SDPA transformer, transformers'
Llama / Qwen2 made bidirectional, and LLaDA's own modeling code, on the 8B / 7B shapes with random weights (bf16).

Why each row: ``lean_sdpa`` (benchmarks/lean_llada.py: no rotary embeddings, nothing but the GEMMs, norms and SDPA)
is the floor a module of this shape can reach in eager PyTorch; ``native`` is what mdsample runs, eagerly (on CUDA
with the fused Triton kernels of models/fused.py; ``native_unfused`` runs their plain-torch references instead), with
a padding mask, per SDPA kernel (flash / memory-efficient / cuDNN forced) and, with ``--compile``, with its blocks
compiled as ``decode.compile=on`` runs them; ``*_captured`` replays the eager or compiled forward as one CUDA graph,
as a decode's captured step does (no launch cost left: what remains is kernel time); ``own_code`` is LLaDA's
modeling code as Fast-dLLM ships it (benchmarks/references.py), holding the same weights as ``native``, so
the run also reports their largest logit difference. ``--profile`` adds the CUDA kernels and the host time of one
eager forward of each of ``native``, ``native_unfused`` and ``lean_sdpa`` (torch.profiler), which is what says where a
gap comes from.

GPU: python benchmarks/native_forward.py --device cuda --profile --compile \
       --out benchmarks/results/native_forward_h100.json
     (carry .reference: the own-code rows need the fetched files; --no-own-code skips them)
CPU sanity (seconds): python benchmarks/native_forward.py --shape tiny
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from lean_llada import LeanLLaDA
from references import llada_reference_model, reference_sdp
from torch.nn.attention import SDPBackend, sdpa_kernel

from mdsample.models import fused
from mdsample.models.lean import LeanConfig, LeanTransformer, build_lean
from mdsample.models.llada import convert_llada_weights

SHAPES = {
    "llada8b": dict(vocab_size=126464, hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=32,
                    intermediate_size=12288, rope_theta=500000.0, norm_eps=1e-5),
    "dream7b": dict(vocab_size=152064, hidden_size=3584, num_layers=28, num_heads=28, num_kv_heads=4,
                    intermediate_size=18944, rope_theta=1000000.0, norm_eps=1e-6, qkv_bias=True),
    "tiny": dict(vocab_size=1000, hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=4,
                 intermediate_size=256, rope_theta=500000.0, norm_eps=1e-5),
}
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}


LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")
"""Runtime and driver calls that launch one kernel each (Triton's launcher calls the driver's cuLaunchKernelEx)."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def timed(fn, tokens: torch.Tensor, iters: int, **kwargs) -> float:
    """Milliseconds per call (mean over ``iters`` after 3 warm-up calls)."""
    for _ in range(3):
        fn(tokens, **kwargs)
    sync(tokens.device)
    start = time.perf_counter()
    for _ in range(iters):
        fn(tokens, **kwargs)
    sync(tokens.device)
    return (time.perf_counter() - start) / iters * 1e3


@torch.no_grad()
def timed_graph(fn, tokens: torch.Tensor, iters: int) -> float:
    """Milliseconds per replay of ``fn(tokens)`` captured as one CUDA graph, as decoding's captured step runs it
    (core/capture.py): warmed up on a side stream (first calls compile), then captured, then replayed."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(tokens)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(tokens)
    return timed(lambda _: graph.replay(), tokens, iters)


@torch.no_grad()
def profile(fn, tokens: torch.Tensor, top: int = 12) -> dict:
    """Host wall-clock of one eager forward, the GPU time its kernels take, and the kernels that take the most.

    Only CUDA-side events count as kernel time (an operator's own entry repeats its kernels' time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    fn(tokens)
    sync(tokens.device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if tokens.is_cuda else [])
    with torch_profile(activities=activities) as prof:
        start = time.perf_counter()
        fn(tokens)
        host_ms = (time.perf_counter() - start) * 1e3
        sync(tokens.device)
    events = prof.key_averages()
    device_us = {e.key: e.self_device_time_total for e in events
                 if e.device_type == torch.autograd.DeviceType.CUDA and e.self_device_time_total > 0}
    launches = sum(e.count for e in events if e.key in LAUNCHES)
    return dict(host_ms=host_ms, kernel_ms=sum(device_us.values()) / 1e3, kernel_launches=launches,
                top_kernels_ms={k: v / 1e3 for k, v in sorted(device_us.items(), key=lambda kv: -kv[1])[:top]},
                top_host_ops_ms={e.key: e.self_cpu_time_total / 1e3
                                 for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]})


def native_rows(native: LeanTransformer, tokens: torch.Tensor, padded: torch.Tensor, args) -> dict:
    """The native module eager (fused kernels where they run), unfused, with a padding mask, and compiled; on CUDA
    also each captured as a CUDA graph (what a decode step replays)."""
    row = {"native_ms": timed(native, tokens, args.iters),
           "native_masked_ms": timed(native, tokens, args.iters, attention_mask=padded)}
    with fused.disabled():
        row["native_unfused_ms"] = timed(native, tokens, args.iters)
    if tokens.is_cuda:
        row["native_captured_ms"] = timed_graph(native, tokens, args.iters)
    if args.compile:
        native.use_compiled(True)
        row["native_compiled_ms"] = timed(native, tokens, args.iters)
        if tokens.is_cuda:
            row["native_compiled_captured_ms"] = timed_graph(native, tokens, args.iters)
        native.use_compiled(False)
    if args.profile:
        row["profile_native"] = profile(native, tokens)
        with fused.disabled():
            row["profile_native_unfused"] = profile(native, tokens)
    return row


def random_lean(shape: str, device: torch.device, dtype: torch.dtype) -> LeanTransformer:
    with torch.device(device):
        model = LeanTransformer(LeanConfig(**SHAPES[shape])).to(dtype).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0) if name.endswith("norm.weight") else p.normal_(0.0, 0.02)
    return model


def transformers_bidirectional(shape: str, device: torch.device, dtype: torch.dtype):
    """transformers' Llama / Qwen2 with the causal flag off in every attention layer."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    s = SHAPES[shape]
    common = dict(vocab_size=s["vocab_size"], hidden_size=s["hidden_size"], intermediate_size=s["intermediate_size"],
                  num_hidden_layers=s["num_layers"], num_attention_heads=s["num_heads"],
                  num_key_value_heads=s["num_kv_heads"], rope_theta=s["rope_theta"], rms_norm_eps=s["norm_eps"],
                  tie_word_embeddings=False, attn_implementation="sdpa")
    cls, cfg = (Qwen2ForCausalLM, Qwen2Config(**common)) if s.get("qkv_bias") else (LlamaForCausalLM,
                                                                                     LlamaConfig(**common))
    with torch.device(device):
        model = cls(cfg).to(dtype).eval()
    for layer in model.model.layers:
        layer.self_attn.is_causal = False
    return model, lambda tokens, **kw: model(input_ids=tokens, use_cache=False, **kw).logits


def llada_rows(shape: str, tokens: torch.Tensor, padded: torch.Tensor, args, dtype) -> dict:
    """LLaDA's own code and the native module holding its weights: times, logit difference, profiles."""
    s, device, row = SHAPES[shape], tokens.device, {}
    own = llada_reference_model(s["num_layers"], s["hidden_size"], s["num_heads"], s["num_kv_heads"],
                                s["intermediate_size"], s["vocab_size"], device, dtype)
    cfg = LeanConfig(**s)
    native = build_lean(cfg, convert_llada_weights({n: p.detach() for n, p in own.named_parameters()}, cfg),
                        device, dtype)
    row.update(native_rows(native, tokens, padded, args))
    if device.type == "cuda":
        for name, backend in BACKENDS.items():
            try:
                with sdpa_kernel([backend]):
                    row[f"native_{name}_ms"] = timed(native, tokens, args.iters)
            except RuntimeError as error:  # the kernel does not take these inputs
                row[f"native_{name}_ms"] = f"unavailable: {str(error).splitlines()[0][:160]}"
    with reference_sdp(own), torch.no_grad():
        row["own_code_ms"] = timed(lambda t, **kw: own(t, **kw).logits, tokens, args.iters)
        row["own_code_masked_ms"] = timed(lambda t, **kw: own(t, **kw).logits, tokens, args.iters,
                                          attention_mask=padded)
        truth = own(tokens).logits.float()
        if args.profile:
            row["profile_own_code"] = profile(lambda t: own(t).logits, tokens)
    with torch.no_grad():
        row["max_logit_diff_vs_own_code"] = (native(tokens).logits.float() - truth).abs().max().item()
        row["logit_scale"] = truth.abs().max().item()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["llada8b", "dream7b", "tiny", "all"], default="all")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--length", type=int, default=384)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--compile", action="store_true", help="also time native with its layers compiled")
    parser.add_argument("--profile", action="store_true",
                        help="kernel / host profiles of native (fused and unfused) and lean_sdpa")
    parser.add_argument("--no-own-code", action="store_true", help="skip LLaDA's own modeling code")
    parser.add_argument("--out")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    shapes = ["llada8b", "dream7b"] if args.shape == "all" else [args.shape]
    results: dict[str, dict] = {}
    torch.manual_seed(0)
    for shape in shapes:
        tokens = torch.randint(0, 1000, (args.batch, args.length), device=device)
        padded = torch.ones_like(tokens)
        padded[:, :1] = 0
        row = results[shape] = {}
        s = SHAPES[shape]
        if not s.get("qkv_bias"):
            with torch.device(device):
                lean = LeanLLaDA(s["num_layers"], s["hidden_size"], s["num_heads"], s["intermediate_size"],
                                 s["vocab_size"]).to(dtype).eval()
            row["lean_sdpa_ms"] = timed(lean, tokens, args.iters)
            if args.profile:
                row["profile_lean_sdpa"] = profile(lean, tokens)
            del lean
        if s.get("qkv_bias") or args.no_own_code:
            native = random_lean(shape, device, dtype)
            row.update(native_rows(native, tokens, padded, args))
            del native
        else:
            row.update(llada_rows(shape, tokens, padded, args, dtype))
        model, fn = transformers_bidirectional(shape, device, dtype)
        row["transformers_ms"] = timed(fn, tokens, args.iters)
        del model, fn
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if "lean_sdpa_ms" in row:
            row["native_over_lean_sdpa"] = row["native_ms"] / row["lean_sdpa_ms"]
            row["native_unfused_over_lean_sdpa"] = row["native_unfused_ms"] / row["lean_sdpa_ms"]
        if "own_code_ms" in row:
            row["own_code_over_native"] = row["own_code_ms"] / row["native_ms"]
        print(json.dumps({shape: {k: v for k, v in row.items() if not k.startswith("profile")}}), flush=True)
    meta = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "batch": args.batch, "length": args.length, "dtype": str(dtype),
            "fused_kernels": fused.uses_kernels(torch.empty(0, device=device, dtype=dtype))}
    report = {"meta": meta, "results": results}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
