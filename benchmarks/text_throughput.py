"""Text decoding throughput on the LLaDA-8B shape: ms per step, tokens/s and peak memory of every rule, without and
with KV caches and the captured step, next to the reference loops timed in the same run on the same model.

Model: the lean LLaDA module (models/lean.py) with random weights behind models/cached.py's CachingDenoiser; preset
"llada8b" = 32 layers, d 4096, 32 heads, SwiGLU 12,288, vocab 126,464, bf16; canvas = prompt 128 + generation 256,
blocks of 32, one token per step (KLASS with an unreachable confidence threshold so that its whole KL machinery runs
and it still commits one token per step). The reference loops, LLaDA's ``generate``, KLASS's
``stable_confident_decode`` and Fast-dLLM's ``generate_with_prefix_cache`` / ``generate_with_dual_cache``, are their
own files, fetched at pinned commits; their functions are loaded verbatim (without the files' script-level imports of
tokenizers and remote model classes, which only their ``main`` uses) and call the same lean model through ``HFStyle``,
which answers the transformers-style calls they make (``.logits``, ``past_key_values``, ``replace_position``).
KLASS and Fast-dLLM are batch-1 loops; LLaDA's runs at every batch size.

Per run: ``step_ms`` is the steady-state time per step (the second half of the decode, after every CUDA graph of the
uncached and dual-cache runs has been captured; the prefix cache captures one graph per block, included),
``e2e_step_ms`` the whole decode's wall-clock per step, ``tokens_per_s`` = batch * generation / whole decode,
``peak_gb`` the peak allocated memory. ``floor_ms`` is the weight-read floor: parameter bytes / the device's measured
copy bandwidth.

1. Fetch the reference loops (needs network; the GPU machine has none, so fetch where there is one and carry the
   ignored ``.reference/`` folder along):   python benchmarks/text_throughput.py --fetch
2. GPU (each command fits in 10 minutes):
   python benchmarks/text_throughput.py --device cuda --batches 1 --out benchmarks/results/text_throughput_b1_h100.json
   python benchmarks/text_throughput.py --device cuda --batches 8 --out benchmarks/results/text_throughput_b8_h100.json
   CPU smoke test (seconds):   python benchmarks/text_throughput.py --small
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import platform
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.callbacks import Callback
from mdsample.core.rules import BUILTIN_RULES
from mdsample.models.cached import CachedLean
from mdsample.models.lean import LayerKV, LeanConfig, LeanTransformer

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / ".reference" / "loops"
REFERENCES = {
    "llada_generate.py": ("ML-GSAI/LLaDA", "b7e6c3565f194352da44b38dd12b6970597309f3", "generate.py",
                          "a95b1c67d2f9d6a80f7a2d046d59be215fd0cf010c771e9ec07f5b80eae7a9c7"),
    "klass_llada.py": ("shkim0116/KLASS", "ad87ecbe9fdef4a6e93701afbc150cb9213fbcd7", "src/model/llada_klass.py",
                       "1c68212915214f6e3fa1d25a457c91b086c2f18a9ae6c69f83ffc0715716985e"),
    "fast_dllm_generate.py": ("NVlabs/Fast-dLLM", "24cc59e75f20a6384bae8c905965bb090b96388e", "llada/generate.py",
                              "dcfa589b591175a6e4f51d369245cdfba1cdb482d2d9780a8ef1caf54496c359"),
}
"""file in .reference/loops -> (repository, commit, path, sha256 of the file)."""

MASK_ID = 126336
SHAPES = {
    "llada8b": dict(vocab_size=126464, hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=32,
                    intermediate_size=12288),
    "small": dict(vocab_size=126464, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64),
}
"""The small shape keeps LLaDA's vocabulary (and mask id 126336, which KLASS's loop hard-codes)."""

RULE_OPTIONS = {"klass": {"conf_threshold": 2.0}}
KLASS_REFERENCE = dict(conf_threshold=2.0, kl_threshold=0.01, kl_history_length=2, alg="klass", unmask_strategy="all")


def fetch() -> None:
    """Download the reference files at their pinned commits into .reference/loops and check their sha256."""
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    for name, (repo, commit, path, digest) in REFERENCES.items():
        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        data = urllib.request.urlopen(url, timeout=60).read()
        if hashlib.sha256(data).hexdigest() != digest:
            raise SystemExit(f"{url}: sha256 differs from the pinned {digest}")
        (REFERENCE_DIR / name).write_bytes(data)
        print(f"fetched {url} -> {REFERENCE_DIR / name}")


def load_functions(name: str, wanted: tuple[str, ...]) -> dict:
    """The functions ``wanted`` of a fetched reference file, executed verbatim in a namespace with the modules they
    use (torch, numpy, F, math, os, json); the file's other top-level statements (imports of tokenizers and model
    classes for its ``main``) are left out."""
    path = REFERENCE_DIR / name
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `python benchmarks/text_throughput.py --fetch` (with network)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != REFERENCES[name][3]:
        raise SystemExit(f"{path} is not the pinned file; fetch it again")
    tree = ast.parse(data)
    body = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in wanted]
    import json as json_module
    import os

    namespace = {"torch": torch, "np": np, "F": F, "math": math, "os": os, "json": json_module}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return {k: namespace[k] for k in wanted}


def load_references() -> dict:
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


class HFStyle:
    """The lean model behind the calls the reference loops make: ``model(x).logits``, ``model(x, use_cache=True)``
    with ``.past_key_values`` (per layer (keys, values)), the prefix cache's ``past_key_values=`` continuation and the
    dual cache's ``replace_position`` (the block recomputed between stored prefix and suffix)."""

    def __init__(self, lean: LeanTransformer):
        self.lean = lean
        self.device = next(lean.parameters()).device
        self.config = SimpleNamespace(vocab_size=lean.config.vocab_size)

    def __call__(self, input_ids, attention_mask=None, past_key_values=None, use_cache=False, replace_position=None):
        if past_key_values is None:
            out = self.lean(input_ids, attention_mask=attention_mask, return_kv=use_cache)
            kv = [(k, v) for k, v in out.kv] if use_cache else None
            return SimpleNamespace(logits=out.logits, past_key_values=kv)
        if replace_position is None:
            prefix = [LayerKV(k, v) for k, v in past_key_values]
            return SimpleNamespace(logits=self.lean(input_ids, prefix=prefix).logits, past_key_values=None)
        block = replace_position[0].nonzero().squeeze(1)  # Fast-dLLM's attention reads the block the same way
        s, e = int(block[0]), int(block[-1]) + 1
        prefix = [LayerKV(k[:, :, :s], v[:, :, :s]) for k, v in past_key_values]
        suffix = [LayerKV(k[:, :, e:], v[:, :, e:]) for k, v in past_key_values]
        return SimpleNamespace(logits=self.lean(input_ids, prefix=prefix, suffix=suffix).logits, past_key_values=None)


def build(shape: str, device: torch.device, dtype: torch.dtype) -> LeanTransformer:
    cfg = LeanConfig(**SHAPES[shape], rope_theta=500000.0, norm_eps=1e-5)
    with torch.device("meta"):
        model = LeanTransformer(cfg)
    model = model.to_empty(device=device).to(dtype)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            torch.nn.init.ones_(p)
        else:
            torch.nn.init.normal_(p, std=0.02)
    return model.eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peaks(device: torch.device) -> dict:
    """Peak allocated and reserved memory (GiB) since the last reset. A CUDA graph's replays do not allocate: its
    intermediates stay reserved in its private pool, so the reserved peak bounds what a captured decode holds."""
    if device.type != "cuda":
        return dict(peak_gb=None, peak_reserved_gb=None)
    return dict(peak_gb=torch.cuda.max_memory_allocated(device) / 2**30,
                peak_reserved_gb=torch.cuda.max_memory_reserved(device) / 2**30)


def bandwidth(device: torch.device, megabytes: int) -> float:
    """Bytes per second a device-to-device copy moves (read + write)."""
    src = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    start, repeats = time.perf_counter(), 10
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * repeats / (time.perf_counter() - start)


class StepClock(Callback):
    """Wall-clock after every step (the loop syncs once per step, so the differences are step times) and at the end."""

    def __init__(self):
        self.times: list[float] = []

    def on_step(self, state, step, rows, committed) -> None:
        self.times.append(time.perf_counter())

    def on_end(self, state) -> None:
        self.times.append(time.perf_counter())


def timing(start: float, times: list[float], steps: int, batch: int, gen: int, device) -> dict:
    total = times[-1] - start
    half = steps // 2
    steady = (times[-1] - times[half - 1]) / (steps - half) if half else total / steps
    return dict(steps=steps, step_ms=steady * 1e3, e2e_step_ms=total / steps * 1e3, tokens_per_s=batch * gen / total,
                **peaks(device))


def run_mdsample(den: CachedLean, rule: str, batch: int, cache: str, capture: str, args,
                 prompt: torch.Tensor) -> tuple[dict, torch.Tensor]:
    device = prompt.device
    state = MaskedState.blank(batch, args.gen, MASK_ID, prompt=prompt.expand(batch, -1), device=device)
    clock = StepClock()
    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    result = decode(den, state, BUILTIN_RULES[rule](**RULE_OPTIONS.get(rule, {})),
                    schedule=BlockSchedule(args.gen, args.block), generator=torch.Generator(device).manual_seed(0),
                    cache=cache, capture=capture, callbacks=[clock])
    row = dict(kind="mdsample", rule=rule, batch=batch, cache=cache, capture=capture, graphs=result.graphs,
               **timing(start, clock.times, result.steps, batch, args.gen, device))
    return row, result.tokens


def run_reference(name: str, fn, model: HFStyle, batch: int, args, prompt) -> tuple[dict, torch.Tensor]:
    device = prompt.device
    x = prompt.expand(batch, -1).clone()
    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    common = dict(steps=args.gen, gen_length=args.gen, block_length=args.block, temperature=0.0)
    if name == "llada_generate":
        tokens, steps = fn(model, x, mask_id=MASK_ID, **common), args.gen
    elif name == "klass":
        common.pop("temperature")
        tokens, steps = fn(model, None, x, mask_id=MASK_ID, **common, **KLASS_REFERENCE)
    else:
        tokens, steps = fn(model, x, mask_id=MASK_ID, remasking="low_confidence", **common)
    sync(device)
    total = time.perf_counter() - start
    row = dict(kind="reference", rule=name, batch=batch, cache=None, capture=None, graphs=0, steps=int(steps),
               step_ms=total / int(steps) * 1e3, e2e_step_ms=total / int(steps) * 1e3,
               tokens_per_s=batch * args.gen / total, **peaks(device))
    return row, tokens


def time_forward(model: LeanTransformer, batch: int, length: int, repeats: int, device) -> dict:
    tokens = torch.randint(0, 1000, (batch, length), device=device)
    model(tokens)
    sync(device)
    reset_peak(device)
    start = time.perf_counter()
    for _ in range(repeats):
        model(tokens)
    sync(device)
    return dict(kind="forward", rule=None, batch=batch, cache=None, capture=None, graphs=0, steps=repeats,
                step_ms=(time.perf_counter() - start) / repeats * 1e3, **peaks(device))


def find(rows: list[dict], **key) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in key.items())), None)


def ratio(a: dict | None, b: dict | None, field: str = "step_ms") -> float | None:
    return None if a is None or b is None or not b.get(field) else a[field] / b[field]


def summarise(rows: list[dict], floor_ms: float, batches: list[int]) -> dict:
    out: dict = {}
    for b in batches:
        plain = find(rows, kind="mdsample", rule="confidence", batch=b, cache="none", capture="auto")
        klass = find(rows, kind="mdsample", rule="klass", batch=b, cache="none", capture="auto")
        forward = find(rows, kind="forward", batch=b)
        out[f"b{b}"] = {
            "dual_over_uncached_step": ratio(find(rows, kind="mdsample", rule="confidence", batch=b, cache="dual",
                                                  capture="auto"), plain),
            "klass_over_plain_step": ratio(klass, plain),
            "klass_peak_over_forward_peak": ratio(klass, forward, "peak_gb"),
            "klass_reserved_over_forward_reserved": ratio(klass, forward, "peak_reserved_gb"),
            "klass_eager_peak_over_forward_peak": ratio(find(rows, kind="mdsample", rule="klass", batch=b,
                                                             cache="none", capture="off"), forward, "peak_gb"),
            "dual_captured_step_over_floor": ratio(find(rows, kind="mdsample", rule="confidence", batch=b,
                                                        cache="dual", capture="auto"), {"step_ms": floor_ms}),
            "uncached_captured_step_over_floor": ratio(plain, {"step_ms": floor_ms}),
            "over_reference": {
                "confidence/llada_generate": ratio(plain, find(rows, kind="reference", rule="llada_generate", batch=b)),
                "klass/klass": ratio(klass, find(rows, kind="reference", rule="klass", batch=b)),
                "prefix/fast_dllm_prefix": ratio(find(rows, kind="mdsample", rule="confidence", batch=b,
                                                      cache="prefix", capture="auto"),
                                                 find(rows, kind="reference", rule="fast_dllm_prefix", batch=b)),
                "dual/fast_dllm_dual": ratio(find(rows, kind="mdsample", rule="confidence", batch=b, cache="dual",
                                                  capture="auto"),
                                             find(rows, kind="reference", rule="fast_dllm_dual", batch=b)),
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="download the reference loops into .reference/loops")
    parser.add_argument("--small", action="store_true", help="CPU smoke test: small shape, short canvas, fp32")
    parser.add_argument("--shape", default="llada8b", choices=sorted(SHAPES))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--rules", default=",".join(sorted(BUILTIN_RULES)))
    parser.add_argument("--caches", default="none,dual", help="caches every rule runs with")
    parser.add_argument("--no-references", action="store_true")
    parser.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    args = parser.parse_args()
    if args.fetch:
        fetch()
        return
    if args.small:
        args.shape, args.device, args.dtype, args.prompt, args.gen, args.block = "small", "cpu", "float32", 8, 16, 8
        args.batches = "1,2" if args.batches == "1,8" else args.batches
        torch.set_num_threads(1)  # a tiny model: intra-op threads only add synchronisation
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build(args.shape, device, getattr(torch, args.dtype))
    den = CachedLean(model, MASK_ID)
    prompt = torch.randint(0, 1000, (1, args.prompt), device=device)
    batches = [int(b) for b in args.batches.split(",")]
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bw = bandwidth(device, 2048 if device.type == "cuda" else 64)
    floor_ms = weight_bytes / bw * 1e3
    refs = {} if args.no_references else load_references()
    warm = argparse.Namespace(gen=args.block, block=args.block)
    rows: list[dict] = []
    agree: dict[str, bool] = {}

    def record(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), flush=True)

    for batch in batches:
        for capture in ("auto", "off"):
            run_mdsample(den, "confidence", batch, "dual", capture, warm, prompt)  # kernels, allocator, cuBLAS
        record(time_forward(model, batch, args.prompt + args.gen, 5, device))
        tokens = {}
        for rule in args.rules.split(","):
            for cache in args.caches.split(","):
                row, tokens[rule, cache] = run_mdsample(den, rule, batch, cache, "auto", args, prompt)
                record(row)
        for rule, cache in (("confidence", "prefix"), ("confidence", "none"), ("confidence", "dual"),
                            ("klass", "none")):
            capture = "auto" if cache == "prefix" else "off"
            row, tokens[rule, cache, capture] = run_mdsample(den, rule, batch, cache, capture, args, prompt)
            record(row)
        ours = {"llada_generate": ("confidence", "none"), "klass": ("klass", "none"),
                "fast_dllm_prefix": ("confidence", "prefix", "auto"), "fast_dllm_dual": ("confidence", "dual")}
        for name, fn in refs.items():
            if batch > 1 and name != "llada_generate":
                continue  # batch-1 loops
            run_reference(name, fn, HFStyle(model), batch, warm, prompt)
            row, ref_tokens = run_reference(name, fn, HFStyle(model), batch, args, prompt)
            record(row)
            if ours[name] in tokens:
                agree[f"b{batch}:{name}"] = bool(torch.equal(tokens[ours[name]], ref_tokens))

    report = dict(
        benchmark="text_throughput", shape=args.shape, device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        dtype=args.dtype, prompt=args.prompt, gen=args.gen, block=args.block, torch=torch.__version__,
        weight_gb=weight_bytes / 2**30, copy_bandwidth_gbs=bw / 1e9, floor_ms=floor_ms,
        same_tokens_as_reference=agree, summary=summarise(rows, floor_ms, batches), rows=rows,
    )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
