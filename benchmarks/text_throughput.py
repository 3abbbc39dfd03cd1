"""Text decoding throughput on the LLaDA-8B shape: ms per step, tokens/s and peak memory of every rule, without and
with KV caches and the captured step, next to the reference loops timed in the same run on the same model.

Model: the lean LLaDA module (models/lean.py) with random weights behind models/cached.py's CachingDenoiser; preset
"llada8b" = 32 layers, d 4096, 32 heads, SwiGLU 12,288, vocab 126,464, bf16; canvas = prompt 128 + generation 256,
blocks of 32, one token per step (KLASS with an unreachable confidence threshold so that its whole KL machinery runs
and it still commits one token per step). The reference loops, LLaDA's ``generate``, KLASS's
``stable_confident_decode`` and Fast-dLLM's ``generate_with_prefix_cache`` / ``generate_with_dual_cache``, are their
own files, fetched at pinned commits (benchmarks/references.py), and run twice: on Fast-dLLM's own LLaDA modeling code
holding the same weights (``model="fast_dllm"``: the system users run, which the targets compare against) and on the
same lean module as ours through ``HFStyle``, which answers the transformers-style calls they make (``.logits``,
``past_key_values``, ``replace_position``) (``model="lean"``: the loops' own cost, model speed factored out).
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
import contextlib
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from references import fetch, llada_reference_model, load_loops, reference_sdp

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.callbacks import Callback
from mdsample.core.rules import BUILTIN_RULES
from mdsample.models.cached import CachedLean
from mdsample.models.lean import LayerKV, LeanConfig, LeanTransformer, build_lean
from mdsample.models.llada import convert_llada_weights

MASK_ID = 126336
SHAPES = {
    "llada8b": dict(vocab_size=126464, hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=32,
                    intermediate_size=12288),
    "small": dict(vocab_size=126464, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64),
}
"""The small shape keeps LLaDA's vocabulary (and mask id 126336, which KLASS's loop hard-codes)."""

RULE_OPTIONS = {"klass": {"conf_threshold": 2.0}}
KLASS_REFERENCE = dict(conf_threshold=2.0, kl_threshold=0.01, kl_history_length=2, alg="klass", unmask_strategy="all")


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


def build(shape: str, device: torch.device, dtype: torch.dtype, reference: bool):
    """The lean model with random weights (normal, std 0.02; norms 1) and, with ``reference``, Fast-dLLM's own LLaDA
    model holding the same weights (the lean one is loaded from it through the native LLaDA mapping)."""
    cfg = LeanConfig(**SHAPES[shape], rope_theta=500000.0, norm_eps=1e-5)
    if reference:
        own = llada_reference_model(cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads,
                                    cfg.intermediate_size, cfg.vocab_size, device, dtype)
        weights = {name: p.detach() for name, p in own.named_parameters()}
        return build_lean(cfg, convert_llada_weights(weights, cfg), device, dtype), own
    with torch.device("meta"):
        model = LeanTransformer(cfg)
    model = model.to_empty(device=device).to(dtype)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            torch.nn.init.ones_(p)
        else:
            torch.nn.init.normal_(p, std=0.02)
    return model.eval(), None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> float:
    """Start a peak-memory window; returns the GiB allocated at its start (the weights and anything else resident)."""
    if device.type != "cuda":
        return 0.0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device) / 2**30


def peaks(device: torch.device, resident: float) -> dict:
    """Peak allocated and reserved memory (GiB) since the window started, and ``working_gb``: the allocated peak
    above what was resident at its start (the weights of both models stay resident all run, so the ratios the
    targets name are given on both). A CUDA graph's replays do not allocate: its intermediates stay reserved in its
    private pool, so the reserved peak bounds what a captured decode holds."""
    if device.type != "cuda":
        return dict(peak_gb=None, peak_reserved_gb=None, working_gb=None)
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    return dict(peak_gb=peak, peak_reserved_gb=torch.cuda.max_memory_reserved(device) / 2**30,
                working_gb=peak - resident)


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


def timing(start: float, times: list[float], steps: int, batch: int, gen: int) -> dict:
    total = times[-1] - start
    half = steps // 2
    steady = (times[-1] - times[half - 1]) / (steps - half) if half else total / steps
    return dict(steps=steps, step_ms=steady * 1e3, e2e_step_ms=total / steps * 1e3, tokens_per_s=batch * gen / total)


def run_mdsample(den: CachedLean, rule: str, batch: int, cache: str, capture: str, args,
                 prompt: torch.Tensor) -> tuple[dict, torch.Tensor]:
    device = prompt.device
    state = MaskedState.blank(batch, args.gen, MASK_ID, prompt=prompt.expand(batch, -1), device=device)
    clock = StepClock()
    sync(device)
    resident = reset_peak(device)
    start = time.perf_counter()
    result = decode(den, state, BUILTIN_RULES[rule](**RULE_OPTIONS.get(rule, {})),
                    schedule=BlockSchedule(args.gen, args.block), generator=torch.Generator(device).manual_seed(0),
                    cache=cache, capture=capture, callbacks=[clock])
    row = dict(kind="mdsample", rule=rule, batch=batch, cache=cache, capture=capture, graphs=result.graphs,
               **timing(start, clock.times, result.steps, batch, args.gen), **peaks(device, resident))
    return row, result.tokens


def run_reference(name: str, fn, model, label: str, batch: int, args, prompt) -> tuple[dict, torch.Tensor]:
    """One reference loop on ``model`` (``HFStyle`` over the lean module, or Fast-dLLM's own model: ``label``)."""
    device = prompt.device
    x = prompt.expand(batch, -1).clone()
    sync(device)
    resident = reset_peak(device)
    start = time.perf_counter()
    common = dict(steps=args.gen, gen_length=args.gen, block_length=args.block, temperature=0.0)
    with torch.no_grad():
        if name == "llada_generate":
            tokens, steps = fn(model, x, mask_id=MASK_ID, **common), args.gen
        elif name == "klass":
            common.pop("temperature")
            tokens, steps = fn(model, None, x, mask_id=MASK_ID, **common, **KLASS_REFERENCE)
        else:
            tokens, steps = fn(model, x, mask_id=MASK_ID, remasking="low_confidence", **common)
    sync(device)
    total = time.perf_counter() - start
    row = dict(kind="reference", rule=name, model=label, batch=batch, cache=None, capture=None, graphs=0,
               steps=int(steps), step_ms=total / int(steps) * 1e3, e2e_step_ms=total / int(steps) * 1e3,
               tokens_per_s=batch * args.gen / total, **peaks(device, resident))
    return row, tokens


@torch.no_grad()
def time_forward(model: LeanTransformer, batch: int, length: int, repeats: int, device) -> dict:
    """One eager forward over the whole canvas (the plain loop's step without its statistics)."""
    tokens = torch.randint(0, 1000, (batch, length), device=device)
    model(tokens)
    sync(device)
    resident = reset_peak(device)
    start = time.perf_counter()
    for _ in range(repeats):
        model(tokens)
    sync(device)
    return dict(kind="forward", rule=None, batch=batch, cache=None, capture=None, graphs=0, steps=repeats,
                step_ms=(time.perf_counter() - start) / repeats * 1e3, **peaks(device, resident))


KERNEL_KINDS = (("gemm", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "splitk")),
                ("attention", ("attention", "fmha", "flash", "sdpa", "cudnn")),
                ("copy", ("copy", "cat", "scatter", "index", "gather")))


def kernel_kind(name: str) -> str:
    lower = name.lower()
    return next((kind for kind, marks in KERNEL_KINDS if any(m in lower for m in marks)), "elementwise/other")


class StepProfiler(Callback):
    """torch.profiler over the decode's steps from ``start`` on (the graphs are captured by then): GPU kernel time
    and launches per step by kind, against the wall-clock per step; the difference is time the GPU waited."""

    def __init__(self, start: int):
        from torch.profiler import ProfilerActivity, profile

        self.start, self.steps, self.t0 = start, 0, 0.0
        self.prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])

    def on_step(self, state, step, rows, committed) -> None:
        if step + 1 == self.start:
            self.prof.start()
            self.t0 = time.perf_counter()
        elif step + 1 > self.start:
            self.steps += 1

    def on_end(self, state) -> None:
        wall = time.perf_counter() - self.t0
        self.prof.stop()
        kinds: dict[str, list[float]] = {}
        for e in self.prof.key_averages():
            if e.device_type == torch.autograd.DeviceType.CUDA and e.self_device_time_total > 0:
                entry = kinds.setdefault(kernel_kind(e.key), [0.0, 0])
                entry[0] += e.self_device_time_total / 1e3
                entry[1] += e.count
        n = max(self.steps, 1)
        self.result = dict(steps=self.steps, wall_ms_per_step=wall * 1e3 / n,
                           gpu_ms_per_step=sum(v[0] for v in kinds.values()) / n,
                           kernels_per_step=sum(v[1] for v in kinds.values()) / n,
                           by_kind={k: dict(ms_per_step=v[0] / n, kernels_per_step=v[1] / n) for k, v in kinds.items()})


def profile_decode(den: CachedLean, batch: int, cache: str, args, prompt: torch.Tensor) -> dict:
    """Kernel profile of the confidence rule's captured steps (two blocks; the second block's steps are profiled)."""
    device = prompt.device
    state = MaskedState.blank(batch, 2 * args.block, MASK_ID, prompt=prompt.expand(batch, -1), device=device)
    profiler = StepProfiler(start=args.block + 1)
    decode(den, state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(2 * args.block, args.block),
           generator=torch.Generator(device).manual_seed(0), cache=cache, capture="auto", callbacks=[profiler])
    return dict(kind="profile", rule="confidence", batch=batch, cache=cache, capture="auto", **profiler.result)


def find(rows: list[dict], **key) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in key.items())), None)


def ratio(a: dict | None, b: dict | None, field: str = "step_ms") -> float | None:
    return None if a is None or b is None or not b.get(field) else a[field] / b[field]


def summarise(rows: list[dict], floor_ms: float, batches: list[int]) -> dict:
    """The ratios the performance targets name, per batch size (None where a run is missing)."""
    out: dict = {}
    for b in batches:
        def ours(rule: str = "confidence", cache: str = "none", capture: str = "auto") -> dict | None:
            return find(rows, kind="mdsample", rule=rule, batch=b, cache=cache, capture=capture)

        def reference(name: str, model: str) -> dict | None:
            return find(rows, kind="reference", rule=name, model=model, batch=b)

        plain, klass, dual, forward = ours(), ours("klass"), ours(cache="dual"), find(rows, kind="forward", batch=b)
        fastest = min((r for r in rows if r["kind"] == "mdsample" and r["batch"] == b and r["rule"] == "confidence"),
                      key=lambda r: r["step_ms"], default=None)
        out[f"b{b}"] = {
            "fastest_confidence": None if fastest is None else {k: fastest[k] for k in ("cache", "capture", "step_ms",
                                                                                       "tokens_per_s")},
            "dual_over_uncached_step": ratio(dual, plain),
            "dual_over_uncached_eager_step": ratio(ours(cache="dual", capture="off"), ours(capture="off")),
            "klass_over_plain_step": ratio(klass, plain),
            "klass_eager_over_plain_eager_step": ratio(ours("klass", capture="off"), ours(capture="off")),
            "klass_peak_over_forward_peak": ratio(klass, forward, "peak_gb"),
            "klass_reserved_over_forward_reserved": ratio(klass, forward, "peak_reserved_gb"),
            "klass_eager_peak_over_forward_peak": ratio(ours("klass", capture="off"), forward, "peak_gb"),
            "klass_working_over_forward_working": ratio(klass, forward, "working_gb"),
            "klass_eager_working_over_forward_working": ratio(ours("klass", capture="off"), forward, "working_gb"),
            "dual_captured_step_over_floor": ratio(dual, {"step_ms": floor_ms}),
            "uncached_captured_step_over_floor": ratio(plain, {"step_ms": floor_ms}),
            "fastest_tokens_per_s_over_fast_dllm_prefix": {
                model: ratio(fastest, reference("fast_dllm_prefix", model), "tokens_per_s")
                for model in ("fast_dllm", "lean")},
            "step_over_reference": {
                model: {
                    "confidence/llada_generate": ratio(plain, reference("llada_generate", model)),
                    "klass/klass": ratio(klass, reference("klass", model)),
                    "prefix/fast_dllm_prefix": ratio(ours(cache="prefix"), reference("fast_dllm_prefix", model)),
                    "dual/fast_dllm_dual": ratio(dual, reference("fast_dllm_dual", model)),
                } for model in ("fast_dllm", "lean")},
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
    parser.add_argument("--references", default="fast_dllm,lean",
                        help="models the reference loops run on: fast_dllm (Fast-dLLM's own LLaDA modeling code, "
                             "holding the same weights), lean (the same lean module as ours: the loops' own cost); "
                             "'' for none")
    parser.add_argument("--profile", action="store_true", help="kernel profile of the captured steps (CUDA)")
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
    labels = [m for m in args.references.split(",") if m]
    if set(labels) - {"fast_dllm", "lean"}:
        parser.error(f"--references: unknown model(s) {sorted(set(labels) - {'fast_dllm', 'lean'})}")
    model, own = build(args.shape, device, getattr(torch, args.dtype), "fast_dllm" in labels)
    den = CachedLean(model, MASK_ID)
    prompt = torch.randint(0, 1000, (1, args.prompt), device=device)
    batches = [int(b) for b in args.batches.split(",")]
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bw = bandwidth(device, 2048 if device.type == "cuda" else 64)
    floor_ms = weight_bytes / bw * 1e3
    refs = load_loops() if labels else {}
    runners = {"lean": (HFStyle(model), contextlib.nullcontext), "fast_dllm": (own, lambda: reference_sdp(own))}
    warm = argparse.Namespace(gen=args.block, block=args.block)
    rows: list[dict] = []
    agree: dict[str, float] = {}

    def report() -> dict:
        return dict(
            benchmark="text_throughput", shape=args.shape, device=str(device),
            device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            dtype=args.dtype, prompt=args.prompt, gen=args.gen, block=args.block, torch=torch.__version__,
            weight_gb=weight_bytes / 2**30, copy_bandwidth_gbs=bw / 1e9, floor_ms=floor_ms,
            same_tokens_as_reference=agree, reference_models=labels, summary=summarise(rows, floor_ms, batches),
            rows=rows,
        )

    def record(row: dict) -> None:
        """Print the row and rewrite the JSON, so that a run cut short keeps every finished row."""
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report(), indent=2) + "\n")

    rules = sorted(args.rules.split(","), key=lambda r: (r not in ("confidence", "klass"), r))
    for batch in batches:
        for capture in ("auto", "off"):
            run_mdsample(den, "confidence", batch, "dual", capture, warm, prompt)  # kernels, allocator, cuBLAS
        record(time_forward(model, batch, args.prompt + args.gen, 5, device))
        if args.profile and device.type == "cuda":
            for cache in ("none", "dual"):
                record(profile_decode(den, batch, cache, args, prompt))
        tokens = {}
        for rule in rules[:2]:
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
        for label in labels:
            runner, switches = runners[label]
            for name, fn in refs.items():
                if batch > 1 and name != "llada_generate":
                    continue  # batch-1 loops
                with switches():
                    run_reference(name, fn, runner, label, batch, warm, prompt)
                    row, ref_tokens = run_reference(name, fn, runner, label, batch, args, prompt)
                if ours[name] in tokens:
                    generated = slice(args.prompt, None)
                    same = tokens[ours[name]][:, generated] == ref_tokens[:, generated].to(tokens[ours[name]].device)
                    agree[f"b{batch}:{name}:{label}"] = same.float().mean().item()
                record(row)
        for rule in rules[2:]:
            for cache in args.caches.split(","):
                record(run_mdsample(den, rule, batch, cache, "auto", args, prompt)[0])
    print(json.dumps({k: v for k, v in report().items() if k != "rows"}, indent=2))

if __name__ == "__main__":
    main()
