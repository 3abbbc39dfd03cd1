"""The skinny GEMM (mdsample/models/skinny_triton.py) against cuBLAS (F.linear) on the linear layers of a LLaDA-8B /
Dream-7B decode step: y[M, N] = x[M, K] @ W[N, K]^T with M = 1 to 64 rows, bf16.

Why: at batch 1 these GEMMs read each weight once per step and are bound by HBM bandwidth; cuBLAS reached ~86% of
the copy bandwidth on an H200. Each call is timed as a decode step runs it, inside a CUDA graph (no launch cost), and
rotates through several copies of W (at least ~150 MB together) so that no call finds its weight in the 50 MB L2.
Per shape and M it reports cuBLAS, every candidate config, the best and the one ``skinny_triton.choose`` picks: ms
per call, GB/s of weight bytes, cuBLAS / Triton, and the largest difference to cuBLAS relative to the largest output,
and whether two launches gave the same bits. The summary adds the step's total (calls per step = layers).

GPU (~1-2 min): python benchmarks/skinny_gemm.py --device cuda --shapes llada8b,dream7b --m 1,8,32,64 \
       --out benchmarks/results/skinny_gemm_h200.json
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from dataclasses import asdict
from pathlib import Path

import torch
from torch.nn import functional as F
from triton.runtime.errors import OutOfResources

from mdsample.models.skinny_triton import CANDIDATES, SkinnyConfig, choose, skinny_linear

SHAPES = {  # name: (N, K, bias, calls per step)
    "llada8b": {"qkv": (12288, 4096, False, 32), "out": (4096, 4096, False, 32), "gate_up": (24576, 4096, False, 32),
                "down": (4096, 12288, False, 32), "head": (126464, 4096, False, 1)},
    "dream7b": {"qkv": (4608, 3584, True, 28), "out": (3584, 3584, False, 28), "gate_up": (37888, 3584, False, 28),
                "down": (3584, 18944, False, 28), "head": (152064, 3584, False, 1)},
}
ROTATION_BYTES = 150e6
"""Weight bytes a timed loop rotates through at least (three times an H100 / H200's 50 MB L2)."""
CALLS = 24
"""Calls per captured graph."""


def copy_bandwidth(device: torch.device, replays: int) -> float:
    """GB/s of a 1 GB device-to-device copy (read + write bytes), the ceiling a weight stream can reach."""
    src = torch.empty(2**29, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    ms = graph_ms(lambda: dst.copy_(src), 1, replays)
    return 2 * src.numel() * src.element_size() / ms / 1e6


@functools.cache
def capture_stream() -> torch.cuda.Stream:
    """One side stream for every capture, so that the split-K workspace (one per stream) is allocated once."""
    return torch.cuda.Stream()


def graph_ms(call, calls: int, replays: int) -> float:
    """Milliseconds per ``call(i)`` (i = 0 .. calls - 1, or ``call()``) captured as one CUDA graph: warmed up on the
    capture stream (Triton compiles, the split-K workspace is allocated there), median of ``replays``."""
    run = (lambda: [call(i) for i in range(calls)]) if calls > 1 else call
    stream = capture_stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        run()
    graph.replay()
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times) / calls


def row(config: SkinnyConfig, ms: float, weight_bytes: int, cublas_ms: float, err: float, same: bool) -> dict:
    return dict(config=asdict(config), ms=ms, gb_s=weight_bytes / ms / 1e6, speedup=cublas_ms / ms, rel_err=err,
                deterministic=same)


@torch.no_grad()
def measure(n: int, k: int, m: int, weights: list[torch.Tensor], b: torch.Tensor | None, args) -> dict:
    """cuBLAS and every candidate for one shape and row count."""
    x = torch.randn(m, k, device=weights[0].device, dtype=weights[0].dtype)
    copies = len(weights)
    ref = F.linear(x, weights[0], b)
    scale = ref.float().abs().max().item()
    weight_bytes = n * k * weights[0].element_size()
    cublas_ms = graph_ms(lambda i: F.linear(x, weights[i % copies], b), CALLS, args.replays)
    result = dict(cublas_ms=cublas_ms, cublas_gb_s=weight_bytes / cublas_ms / 1e6, configs=[])
    chosen = choose(m, n, k, torch.cuda.get_device_properties(x.device).multi_processor_count)
    for config in CANDIDATES:
        try:
            y = skinny_linear(x, weights[0], b, config)  # compiles; too many stages for shared memory fails here
        except OutOfResources as e:
            result["configs"].append(dict(config=asdict(config), error=str(e)))
            continue
        err = (y.float() - ref.float()).abs().max().item() / scale
        same = torch.equal(y, skinny_linear(x, weights[0], b, config))
        ms = graph_ms(lambda i, c=config: skinny_linear(x, weights[i % copies], b, c), CALLS, args.replays)
        result["configs"].append(row(config, ms, weight_bytes, cublas_ms, err, same))
    result["chosen"] = next(r for r in result["configs"] if r["config"] == asdict(chosen))
    result["best"] = min((r for r in result["configs"] if "ms" in r), key=lambda r: r["ms"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shapes", default="llada8b,dream7b")
    parser.add_argument("--m", default="1,8,32,64", help="row counts (at most 64)")
    parser.add_argument("--dtype", choices=["bfloat16", "float16"], default="bfloat16")
    parser.add_argument("--replays", type=int, default=10, help=f"timed graph replays of {CALLS} calls each")
    parser.add_argument("--out")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    if device.type != "cuda":
        raise SystemExit("the skinny GEMM benchmark needs CUDA (the kernel's CPU tests: tests/models/test_skinny.py)")
    rows = [int(m) for m in args.m.split(",")]
    report = dict(device=torch.cuda.get_device_name(device), dtype=args.dtype, torch=torch.__version__,
                  copy_gb_s=copy_bandwidth(device, args.replays), candidates=[asdict(c) for c in CANDIDATES],
                  results={})
    summary = {}
    for model in args.shapes.split(","):
        report["results"][model] = {}
        for layer, (n, k, bias, calls) in SHAPES[model].items():
            gen = torch.Generator(device=device).manual_seed(0)
            copies = min(max(2, -(-int(ROTATION_BYTES) // (n * k * 2))), 8)
            weights = [torch.randn(n, k, device=device, dtype=dtype, generator=gen) * 0.02 for _ in range(copies)]
            b = torch.randn(n, device=device, dtype=dtype, generator=gen) if bias else None
            entry = dict(n=n, k=k, bias=bias, calls_per_step=calls, copies=copies, m={})
            report["results"][model][layer] = entry
            for m in rows:
                entry["m"][m] = measure(n, k, m, weights, b, args)
                for key, ms in (("cublas", entry["m"][m]["cublas_ms"]), ("best", entry["m"][m]["best"]["ms"]),
                                ("chosen", entry["m"][m]["chosen"].get("ms", float("nan")))):
                    per_m = summary.setdefault(model, {}).setdefault(m, {})
                    per_m[f"step_{key}_ms"] = per_m.get(f"step_{key}_ms", 0.0) + calls * ms
            del weights, b
            torch.cuda.empty_cache()
            report["step"] = summary
            if args.out:
                Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
            best = {m: (round(r["cublas_ms"], 4), round(r["best"]["ms"], 4), tuple(r["best"]["config"].values()))
                    for m, r in entry["m"].items()}
            print(f"{model}.{layer} [{n}x{k}] m: (cublas ms, best ms, config) {best}", flush=True)
    print(json.dumps(dict(device=report["device"], copy_gb_s=round(report["copy_gb_s"]), step=summary)), flush=True)


if __name__ == "__main__":
    main()
