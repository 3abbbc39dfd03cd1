"""Text decoding throughput on the LLaDA-8B and Dream-7B shapes (issues 10 and 18): ms per step, tokens/s, peak
memory and the ratio to the step's roofline, for every rule, cache mode and capture mode, across batch sizes and
prompt lengths, next to the reference loops timed in the same run on their own model.

Models: the lean module (models/lean.py) with random weights behind models/cached.py's CachedLean (preset
"llada8b": 32 layers, d 4096, 32 heads, SwiGLU 12,288, vocab 126,464) or CachedDream (preset "dream7b": the shape
benchmarks/native_forward.py builds: 28 layers, d 3584, 28 heads over 4 kv heads, SwiGLU 18,944, vocab 152,064,
biased q/k/v, logits shifted by one), bf16. Canvas = prompt (``--prompts``, 128 and 1024) + generation 256, blocks of
32, one token per step (KLASS with an unreachable confidence threshold, so that its whole KL machinery runs and it
still commits one token per step).

The reference loops (LLaDA's ``generate``, KLASS's ``stable_confident_decode``, Fast-dLLM's
``generate_with_prefix_cache`` / ``generate_with_dual_cache``) are their own files at pinned commits
(benchmarks/references.py), run at batch 1 on Fast-dLLM's LLaDA modeling code holding the same weights as ours
(``model="fast_dllm"``: what users run, what the targets compare against) and, optionally, on the lean module
through ``HFStyle`` (``model="lean"``: the loops' own cost). They exist for LLaDA only; the Dream preset has none.

Per row: ``step_ms`` is the steady-state time per step (the second half of the decode, after every CUDA graph has
been captured, block-boundary refreshes included), ``e2e_step_ms`` the whole decode's wall-clock per step,
``tokens_per_s`` = batch * generation / whole decode, ``peak_gb`` the peak allocated memory; ``floor_ms`` the
weight-read floor (parameter bytes / measured copy bandwidth) and ``roofline_ms`` max(weight-read time, FLOPs /
measured bf16 GEMM peak) averaged over the same steps (the FLOP count: benchmarks/throughput_model.py);
``decode`` the decode options passed through (``--decode``, ``--compile``, ``--sync-every``; a loop that syncs only
every N steps may report its steps in bursts, which moves the start of the timed half by up to N steps of 128);
``t_s`` seconds since the start. Rows are written as they are measured, so a run cut short keeps them.
``--budget-s`` skips any measurement expected to end past the budget (listed under ``skipped`` with its estimate)
and goes on with cheaper ones; the order (throughput_model.plan) puts what the targets need first.

1. The reference loops: ``python benchmarks/text_throughput.py --fetch`` (network), or ``--fetch-from DIR`` with
   DIR holding git mirrors ``owner+name/repo`` of the pinned repositories; carry ``.reference/`` to the GPU machine.
2. GPU, 2 x H200 in one call of about 9 minutes: ``OUT=... bash benchmarks/throughput_gpu.sh`` (LLaDA at prompt 128
   with the reference loops on GPU 0; Dream, then LLaDA at prompt 1024, on GPU 1; each process its own JSON, then
   ``python benchmarks/throughput_tables.py FILES --merged ...`` renders the tables and the target check).
3. CPU smoke test (about 3 minutes on 2 cores; both presets, every path): python benchmarks/text_throughput.py --small
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import inspect
import json
import platform
import re
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from native_forward import SHAPES as FORWARD_SHAPES
from references import REFERENCES, fetch, fetch_from_mirrors, llada_reference_model, load_loops, pinned, reference_sdp
from throughput_model import DEFAULT_REFERENCE_STEP_MS, Device, Shape, Spec, estimate_step_ms, plan, roofline, targets

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.callbacks import Callback
from mdsample.core.capture import KeptGraphs
from mdsample.core.compile import use_compile
from mdsample.core.rules import BUILTIN_RULES
from mdsample.models.cached import CachedDream, CachedLean
from mdsample.models.lean import LayerKV, LeanConfig, LeanTransformer, build_lean
from mdsample.models.llada import convert_llada_weights

SHAPES = {
    "llada8b": FORWARD_SHAPES["llada8b"],
    "dream7b": FORWARD_SHAPES["dream7b"],
    "small": dict(vocab_size=126464, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=2, intermediate_size=64,
                  rope_theta=500000.0, norm_eps=1e-5),
    "small_dream": dict(vocab_size=152064, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                        intermediate_size=64, rope_theta=1000000.0, norm_eps=1e-6, qkv_bias=True),
}
"""The small shapes keep the full vocabularies (and so the mask ids; KLASS's loop hard-codes LLaDA's) and the
families' traits (Dream: grouped-query attention, q/k/v biases)."""
PRESETS = {
    "llada8b": SimpleNamespace(shape="llada8b", small="small", mask_id=126336, denoiser=CachedLean, shifted=False,
                               references=True),
    "dream7b": SimpleNamespace(shape="dream7b", small="small_dream", mask_id=151666, denoiser=CachedDream,
                               shifted=True, references=False),
}
"""preset -> its shape, the CPU smoke test's shape, the mask id, the caching denoiser, whether logits are shifted,
whether the reference loops (LLaDA's and Fast-dLLM's, all written for LLaDA) run on it."""

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
    """The lean model with random weights (normal, std 0.02; norms 1), made on the device in ``dtype``, and, with
    ``reference``, Fast-dLLM's own LLaDA model holding the same weights (the lean one is loaded from it through the
    native LLaDA mapping)."""
    cfg = LeanConfig(**SHAPES[shape])
    if reference:
        own = llada_reference_model(cfg.num_layers, cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads,
                                    cfg.intermediate_size, cfg.vocab_size, device, dtype)
        weights = {name: p.detach() for name, p in own.named_parameters()}
        return build_lean(cfg, convert_llada_weights(weights, cfg), device, dtype), own
    with torch.device("meta"):
        model = LeanTransformer(cfg)
    model = model.to_empty(device=device).to(dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0) if name.endswith("norm.weight") else p.normal_(0.0, 0.02)
    return model.eval(), None


def references_missing() -> str | None:
    """Why the reference loops cannot run here (their files unfetched or not the pinned ones, or Fast-dLLM's
    modeling code's one extra import absent), or None."""
    try:
        for name in REFERENCES:
            pinned(name)
    except SystemExit as missing:  # pinned() exits with the command that fetches the files
        return str(missing)
    if importlib.util.find_spec("einops") is None:
        return "Fast-dLLM's modeling_llada.py imports einops, which is not installed"
    return None


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
    above what was resident at its start (the weights, and Fast-dLLM's model while the references still need it).
    A CUDA graph's replays do not allocate: its intermediates stay reserved in its private pool, so the reserved
    peak bounds what a captured decode holds."""
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


def gemm_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 20) -> float:
    """FLOP/s of an n x n x n matmul in ``dtype`` (the roofline's compute term): the best of ``repeats`` timed with
    CUDA events after a warm-up, so that clocks and cuBLAS's kernel choice have settled; wall-clock on the CPU."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            a @ b
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / 1e3)
        else:
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


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


def parse_value(text: str) -> int | float | str:
    """A ``--decode`` value as the decode option takes it: an int, a float, or else the string."""
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text


OWN_DECODE_OPTIONS = ("cache", "capture", "schedule", "generator", "callbacks")
"""decode() arguments this benchmark sets itself (the cache and capture modes are swept with --caches / --captures)."""


def decode_overrides(pairs: list[str], compile_mode: str | None, sync_every: int | None) -> dict:
    """``KEY=VALUE`` pairs (plus ``--compile`` / ``--sync-every``) as keyword arguments of core.decode(), checked
    against its signature here, before any model is built, so that an option this checkout's decode() lacks (one
    whose branch has not merged) stops the run at once with its name instead of failing every measurement."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().removeprefix("decode.")
        if not sep or not key:
            raise SystemExit(f"--decode {pair!r}: expected KEY=VALUE")
        out[key] = parse_value(value.strip())
    if compile_mode is not None:
        out["compile"] = compile_mode
    if sync_every is not None:
        out["sync_every"] = sync_every
    known = (set(inspect.signature(decode).parameters) - set(OWN_DECODE_OPTIONS)) | {"compile"}
    unknown = sorted(set(out) - known)
    if unknown:
        raise SystemExit(f"decode() here has no option(s) {unknown} (it takes {sorted(known)}); "
                         "merge the branch that adds them, or drop them")
    return out


def gpu_tag(name: str) -> str:
    """A short file-name tag of a device name ("NVIDIA H200" -> "h200"; "cpu" when there is no model number)."""
    found = re.search(r"\b([A-Z]+\d+[A-Za-z]*)\b", name)
    return found.group(1).lower() if found else "cpu"


KERNEL_KINDS = (("gemm", ("gemm", "nvjet", "cutlass", "xmma", "cublas", "splitk", "aten::mm", "aten::addmm")),
                ("attention", ("attention", "fmha", "flash", "sdpa", "cudnn")),
                ("copy", ("copy", "cat", "scatter", "index", "gather")))


def kernel_kind(name: str) -> str:
    lower = name.lower()
    return next((kind for kind, marks in KERNEL_KINDS if any(m in lower for m in marks)), "elementwise/other")


SHORT_GAP_US = 5.0
"""StepProfiler.gaps: an idle gap between two kernels shorter than this is launch latency, not host time."""


class StepProfiler(Callback):
    """torch.profiler over the decode's steps after step ``start - 1`` (the graphs are captured by then) up to step
    ``stop`` (default: the end): GPU kernel time and launches per step by kind, against the wall-clock per step; the
    difference is time the GPU waited (``gaps`` says how: launch latency or the host).
    On the CPU (the smoke test) the operators' own CPU time stands in for the kernels'."""

    def __init__(self, start: int, device: torch.device, stop: int | None = None):
        from torch.profiler import ProfilerActivity, profile

        self.start, self.stop, self.steps, self.t0, self.result = start, stop, 0, 0.0, None
        cuda = device.type == "cuda"
        self.prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
        self.kind = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU

    def on_step(self, state, step, rows, committed) -> None:
        if step + 1 == self.start:
            self.prof.start()
            self.t0 = time.perf_counter()
        elif step + 1 > self.start and self.result is None:
            self.steps += 1
            if step + 1 == self.stop:
                self.on_end(state)

    def on_end(self, state) -> None:
        if self.result is not None:  # stopped at ``stop``
            return
        wall = time.perf_counter() - self.t0
        self.prof.stop()
        kinds: dict[str, list[float]] = {}
        for e in self.prof.key_averages():
            if e.device_type == self.kind and self.own_us(e) > 0:
                entry = kinds.setdefault(kernel_kind(e.key), [0.0, 0])
                entry[0] += self.own_us(e) / 1e3
                entry[1] += e.count
        n = max(self.steps, 1)
        gpu = sum(v[0] for v in kinds.values()) / n
        self.result = dict(steps=self.steps, wall_ms_per_step=wall * 1e3 / n, gpu_ms_per_step=gpu,
                           idle_ms_per_step=wall * 1e3 / n - gpu,
                           kernels_per_step=sum(v[1] for v in kinds.values()) / n,
                           by_kind={k: dict(ms_per_step=v[0] / n, kernels_per_step=v[1] / n) for k, v in kinds.items()},
                           gaps=self.gaps(n), top_kernels=self.top_kernels(n))

    def own_us(self, event) -> float:
        cuda = self.kind == torch.autograd.DeviceType.CUDA
        return event.self_device_time_total if cuda else event.self_cpu_time_total

    def top_kernels(self, n: int, top: int = 40) -> list[dict]:
        """The kernels that cost most, per step: what a fusion would remove."""
        rows = [dict(name=e.key[:120], per_step=e.count / n, ms_per_step=self.own_us(e) / 1e3 / n)
                for e in self.prof.key_averages() if e.device_type == self.kind and self.own_us(e) > 0]
        return sorted(rows, key=lambda r: -r["ms_per_step"])[:top]

    def gaps(self, n: int) -> dict:
        """Idle time between consecutive GPU kernels, per step, split by length: gaps under ``SHORT_GAP_US`` are the
        queue's own launch latency (kernel after kernel of a graph or of eagerly queued work), longer ones the GPU
        waiting for the host (a sync, or a host slower than the kernels it launches)."""
        spans = sorted((e.time_range.start, e.time_range.end) for e in self.prof.events()
                       if e.device_type == self.kind and e.time_range.end > e.time_range.start)
        short = long = 0.0
        count_short = count_long = 0
        end = spans[0][1] if spans else 0.0
        for start, stop in spans[1:]:
            gap = start - end
            if 0 < gap < SHORT_GAP_US:
                short, count_short = short + gap, count_short + 1
            elif gap >= SHORT_GAP_US:
                long, count_long = long + gap, count_long + 1
            end = max(end, stop)
        return dict(short_ms_per_step=short / 1e3 / n, short_per_step=count_short / n,
                    long_ms_per_step=long / 1e3 / n, long_per_step=count_long / n, short_gap_us=SHORT_GAP_US)


class PresetRun:
    """One preset's model (and, for LLaDA, Fast-dLLM's model with the same weights) and every measurement on it.

    Each measurement returns its row; ``estimate_s`` says beforehand how long it should take, from the rows measured
    so far (throughput_model.estimate_step_ms), which is what the budget guard reads.
    """

    def __init__(self, name: str, args, device: torch.device, copy_bw: float, gemm: float, labels: list[str],
                 overrides: dict):
        self.name, self.args, self.device, self.overrides = name, args, device, overrides
        self.preset = PRESETS[name]
        self.shape_name = self.preset.small if args.small else self.preset.shape
        self.labels = labels if self.preset.references else []
        dtype = getattr(torch, args.dtype)
        model, self.own = build(self.shape_name, device, dtype, "fast_dllm" in self.labels)
        self.model = model
        self.den = self.preset.denoiser(model, self.preset.mask_id)
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        self.cost = Device(copy_bw, gemm, weight_bytes, torch.finfo(dtype).bits // 8)
        self.shape = Shape.of(SHAPES[self.shape_name])
        self.floor_ms = weight_bytes / copy_bw * 1e3
        self.loops = load_loops() if self.labels else {}
        self.runners = {"lean": (HFStyle(model), contextlib.nullcontext),
                        "fast_dllm": (self.own, lambda: reference_sdp(self.own))}
        generator = torch.Generator().manual_seed(0)
        self.prompts = {p: torch.randint(0, 1000, (1, p), generator=generator).to(device)
                        for p in args.prompt_list}
        self.warmed: set[tuple[int, int, str]] = set()
        self.tokens: dict[tuple, torch.Tensor] = {}
        self.agree: dict[str, float] = {}

    def info(self) -> dict:
        return dict(shape=self.shape_name, config=SHAPES[self.shape_name], mask_id=self.preset.mask_id,
                    weight_gb=self.cost.weight_bytes / 2**30, floor_ms=self.floor_ms,
                    linear_params=self.shape.linear_params, reference_models=self.labels,
                    same_tokens_as_reference=self.agree)

    def drop_reference_model(self) -> None:
        """Free Fast-dLLM's model once the reference loops are done: the batch sweep needs its memory."""
        self.own = None
        self.runners.pop("fast_dllm")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def peeks(self, rule: str, cache: str | None) -> bool:
        """Whether the loop gives a rule with history a one-block window and a peek per block (core/loop.py,
        ``_peeks``): under the dual cache, unless every step refreshes (the native models offer ``peek``)."""
        history = BUILTIN_RULES[rule](**RULE_OPTIONS.get(rule, {})).history
        refresh = int(self.overrides.get("cache_refresh", 0))
        return bool(history) and self.args.gen // self.args.block > 1 and cache == "dual" and refresh != 1

    def window(self, rule: str, cache: str | None) -> int:
        """The loop's window (core/loop.py): one block, or two for a rule with history (it reads the next block)
        outside the dual cache, where it peeks instead."""
        history = BUILTIN_RULES[rule](**RULE_OPTIONS.get(rule, {})).history
        two = history and self.args.gen // self.args.block > 1 and not self.peeks(rule, cache)
        return self.args.block * (2 if two else 1)

    def roof(self, spec: Spec, gen: int | None = None, prompt: int | None = None, first: int | None = None) -> dict:
        gen = gen or self.args.gen
        rule = spec.rule or "confidence"
        return roofline(self.shape, self.cost, spec.cache or "none", spec.batch, prompt or spec.prompt, gen,
                        self.args.block, self.window(rule, spec.cache), gen, self.preset.shifted, first,
                        int(self.overrides.get("cache_refresh", 0)), self.peeks(rule, spec.cache))

    def estimate_s(self, spec: Spec, rows: list[dict]) -> float:
        """Seconds the measurement should take, warm-up included."""
        args = self.args
        if spec.kind == "reference":
            seen = [r["e2e_step_ms"] for r in rows if r["kind"] == "reference" and r.get("model") == spec.model]
            per_step = max(seen, default=DEFAULT_REFERENCE_STEP_MS)
            return (args.gen + args.block) * per_step / 1e3  # the timed loop and its one-block warm-up
        cache, capture = (spec.cache, spec.capture) if spec.kind != "forward" else ("none", "off")
        mode = [r for r in rows if r["kind"] == "mdsample" and r["preset"] == self.name
                and (r["cache"], r["capture"]) == (cache, capture)]
        same_rule = [r for r in mode if r["rule"] == spec.rule]  # KLASS costs more than the plain loop
        measured = [(r["roofline_kv_ms"], r["e2e_step_ms"]) for r in same_rule or mode]
        step_ms = estimate_step_ms(self.roof(Spec("mdsample", spec.batch, spec.prompt, spec.rule, cache))
                                   ["roofline_kv_ms"], capture, measured)
        steps = {"mdsample": args.gen * (2 if args.keep_graphs else 1), "forward": 6,
                 "profile": 3 * args.block}[spec.kind]  # profile: 2 blocks + tool; kept graphs: an untimed decode
        cold = spec.kind != "forward" and (spec.batch, spec.prompt, capture) not in self.warmed
        warm = args.gen if cold else 0
        return (steps + warm) * step_ms / 1e3

    def row(self, spec: Spec, **fields) -> dict:
        return dict(kind=spec.kind, preset=self.name, rule=spec.rule, model=spec.model, batch=spec.batch,
                    prompt=spec.prompt, gen=self.args.gen, block=self.args.block, cache=spec.cache,
                    capture=spec.capture, decode=self.overrides, floor_ms=self.floor_ms, **fields)

    def measure(self, spec: Spec) -> dict:
        if spec.kind in ("mdsample", "profile") and (spec.batch, spec.prompt, spec.capture) not in self.warmed:
            self.warm_up(spec.batch, spec.prompt, spec.capture)
        return {"mdsample": self.run_mdsample, "reference": self.run_reference, "forward": self.time_forward,
                "profile": self.profile}[spec.kind](spec)

    def decode(self, rule: str, batch: int, prompt: torch.Tensor, gen: int, cache: str, capture: str,
               callbacks: list[Callback], graphs: KeptGraphs | None = None):
        state = MaskedState.blank(batch, gen, self.preset.mask_id, prompt=prompt.expand(batch, -1),
                                  device=self.device)
        options = dict(self.overrides)
        use_compile(self.den, options.pop("compile", "off"), self.device)  # as api.Decoder does before decode()
        return decode(self.den, state, BUILTIN_RULES[rule](**RULE_OPTIONS.get(rule, {})),
                      schedule=BlockSchedule(gen, self.args.block),
                      generator=torch.Generator(self.device).manual_seed(0), cache=cache, capture=capture,
                      callbacks=callbacks, graphs=graphs, **options)

    def warm_up(self, batch: int, prompt: int, capture: str) -> None:
        """A whole decode of the plain loop with the dual cache at this batch, prompt and capture mode, before the
        first timed decode there: kernels (Triton's included, compiled per shape on first use), cuBLAS's choices and
        the allocator's pools are then in place, so that the whole-decode figures (tokens/s) are those of a warm
        process. (One block was not enough: the first whole decode after it ran 10-30% slower than the next.)"""
        self.decode("confidence", batch, self.prompts[prompt], self.args.gen, "dual", capture, [])
        self.warmed.add((batch, prompt, capture))

    def run_mdsample(self, spec: Spec) -> dict:
        """One timed decode; with ``--keep-graphs`` after an untimed one of the same spec that captured the graphs
        the timed one replays (core/capture.py KeptGraphs, as a run's later batches do)."""
        kept = KeptGraphs() if self.args.keep_graphs else None
        if kept is not None:
            self.decode(spec.rule, spec.batch, self.prompts[spec.prompt], self.args.gen, spec.cache, spec.capture,
                        [], kept)
        clock = StepClock()
        sync(self.device)
        resident = reset_peak(self.device)
        start = time.perf_counter()
        result = self.decode(spec.rule, spec.batch, self.prompts[spec.prompt], self.args.gen, spec.cache,
                             spec.capture, [clock], kept)
        row = self.row(spec, graphs=result.graphs, capture_ms_per_step=result.capture_s / result.steps * 1e3,
                       window=self.window(spec.rule, spec.cache),
                       **timing(start, clock.times, result.steps, spec.batch, self.args.gen),
                       **peaks(self.device, resident), **self.roof(spec))
        row["step_over_roofline"] = row["step_ms"] / row["roofline_ms"]
        row["step_over_floor"] = row["step_ms"] / self.floor_ms
        if spec.batch == 1 and spec.prompt == self.args.prompt_list[0]:
            self.tokens[spec.rule, spec.cache, spec.capture] = result.tokens
        return row

    def run_reference(self, spec: Spec) -> dict:
        """A reference loop (after a one-block warm-up of it) and how many of its tokens ours share (``agree``)."""
        runner, switches = self.runners[spec.model]
        with switches():
            self.reference_loop(spec.rule, runner, spec.batch, self.args.block, spec.prompt)
            row, tokens = self.reference_loop(spec.rule, runner, spec.batch, self.args.gen, spec.prompt)
        capture = self.args.capture_list[0]
        ours = {"llada_generate": ("confidence", "none"), "klass": ("klass", "none"),
                "fast_dllm_prefix": ("confidence", "prefix"), "fast_dllm_dual": ("confidence", "dual")}[spec.rule]
        mine = self.tokens.get((*ours, capture))
        if mine is not None:
            generated = slice(spec.prompt, None)
            same = mine[:, generated] == tokens[:, generated].to(mine.device)
            self.agree[f"b{spec.batch}:{spec.rule}:{spec.model}"] = same.float().mean().item()
        return self.row(spec, **row)

    def reference_loop(self, name: str, model, batch: int, gen: int, prompt: int) -> tuple[dict, torch.Tensor]:
        fn, x = self.loops[name], self.prompts[prompt].expand(batch, -1).clone()
        mask_id = self.preset.mask_id
        sync(self.device)
        resident = reset_peak(self.device)
        start = time.perf_counter()
        common = dict(steps=gen, gen_length=gen, block_length=self.args.block, temperature=0.0)
        with torch.no_grad():
            if name == "llada_generate":
                tokens, steps = fn(model, x, mask_id=mask_id, **common), gen
            elif name == "klass":
                common.pop("temperature")
                tokens, steps = fn(model, None, x, mask_id=mask_id, **common, **KLASS_REFERENCE)
            else:
                tokens, steps = fn(model, x, mask_id=mask_id, remasking="low_confidence", **common)
        sync(self.device)
        total = time.perf_counter() - start
        return dict(graphs=0, steps=int(steps), step_ms=total / int(steps) * 1e3, e2e_step_ms=total / int(steps) * 1e3,
                    tokens_per_s=batch * gen / total, **peaks(self.device, resident)), tokens

    @torch.no_grad()
    def time_forward(self, spec: Spec, repeats: int = 5) -> dict:
        """One eager forward over the whole canvas (the plain loop's step without its statistics)."""
        tokens = torch.randint(0, 1000, (spec.batch, spec.prompt + self.args.gen), device=self.device)
        self.model(tokens)
        sync(self.device)
        resident = reset_peak(self.device)
        start = time.perf_counter()
        for _ in range(repeats):
            self.model(tokens)
        sync(self.device)
        step_ms = (time.perf_counter() - start) / repeats * 1e3
        roof = self.roof(Spec("forward", spec.batch, spec.prompt, cache="none"))
        return self.row(spec, graphs=0, steps=repeats, step_ms=step_ms, **peaks(self.device, resident), **roof,
                        step_over_roofline=step_ms / roof["roofline_ms"])

    def profile(self, spec: Spec) -> dict:
        """Kernel profile of the rule's steps in the second of two blocks, after that block's refresh, on a
        canvas of the measured length (the prompt lengthened by the generation it skips), so that each profiled step
        computes and attends to what a step of the measured decode does; with its roofline, it says where a step's
        time above the roofline goes: GEMMs above the compute/weight-read time, other kernels, and GPU idle time."""
        gen = 2 * self.args.block
        prompt = spec.prompt + self.args.gen - gen
        canvas = torch.randint(0, 1000, (1, prompt), generator=torch.Generator().manual_seed(1)).to(self.device)
        profiler = StepProfiler(self.args.block + 1, self.device)
        self.decode(spec.rule, spec.batch, canvas, gen, spec.cache, spec.capture, [profiler])
        roof = self.roof(spec, gen=gen, prompt=prompt, first=self.args.block + 1)
        gemm = profiler.result["by_kind"].get("gemm", {}).get("ms_per_step")
        return self.row(spec, **profiler.result, **roof,
                        wall_over_roofline=profiler.result["wall_ms_per_step"] / roof["roofline_ms"],
                        gemm_over_roofline=None if gemm is None else gemm / roof["roofline_ms"])


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def names(text: str, known, what: str) -> list[str]:
    """A comma list checked against ``known`` ("all": every one of them)."""
    chosen = sorted(known) if text == "all" else [x for x in text.split(",") if x]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SystemExit(f"{what}: unknown {unknown}; choose from {sorted(known)}")
    return chosen


SMALL = dict(device="cpu", dtype="float32", prompts="8,16", gen=16, block=8, batches="1,2,3", detail_batches="1,2",
             presets="llada8b,dream7b", profile=True)
"""--small: the small shapes on the CPU in fp32 (where ours and the reference loops give the same tokens), every
code path once: two prompts, detail batches 1 and 2, a sweep batch 3, both presets."""


def main() -> None:
    started = time.monotonic()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", action="store_true", help="download the reference loops into .reference/loops")
    parser.add_argument("--fetch-from", metavar="DIR",
                        help="copy the reference loops from git mirrors DIR/owner+name/repo instead (no network)")
    parser.add_argument("--small", action="store_true", help="CPU smoke test: " + SMALL.__repr__())
    parser.add_argument("--presets", "--preset", default="llada8b", help=f"comma list of {sorted(PRESETS)}")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--batches", default="1,8,32,64")
    parser.add_argument("--detail-batches", default="1,8",
                        help="batches (at the first prompt) where every rule runs in every cache and capture mode")
    parser.add_argument("--prompts", default="128,1024", help="prompt lengths; the first is the detail cells'")
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--rules", default="all", help="rules at the detail cells (comma list, or all)")
    parser.add_argument("--caches", default="none,prefix,dual", help="cache modes at the detail cells")
    parser.add_argument("--captures", default="auto,off", help="capture modes at the detail cells; the first is "
                                                              "the sweep's")
    parser.add_argument("--sweep-rules", default="confidence,klass", help="rules at the other batch/prompt cells")
    parser.add_argument("--sweep-caches", default="dual", help="cache modes at the other batch/prompt cells")
    parser.add_argument("--references", default="fast_dllm",
                        help="models the reference loops (LLaDA preset, batch 1) run on: fast_dllm (Fast-dLLM's "
                             "LLaDA modeling code holding the same weights), lean (our module: the loops' own cost); "
                             "'' for none")
    parser.add_argument("--decode", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="decode() options passed to every decode of ours and recorded in every row "
                             "(e.g. compile=on sync_every=8)")
    parser.add_argument("--compile", choices=["auto", "on", "off"], help="shorthand for --decode compile=MODE")
    parser.add_argument("--sync-every", type=int, help="shorthand for --decode sync_every=N")
    parser.add_argument("--keep-graphs", action="store_true",
                        help="time each of our decodes after an untimed one of the same cell that captured its CUDA "
                             "graphs, which the timed one replays (core/capture.py KeptGraphs: a run's later batches); "
                             "its KV cache is then resident before the timed decode, outside working_gb")
    parser.add_argument("--profile", action="store_true",
                        help="kernel profiles of the plain loop (and KLASS's dual-cache step) where targets are read")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="wall-clock budget from the start: a measurement expected to end past it is skipped")
    parser.add_argument("--out", default=None,
                        help="JSON file (default: benchmarks/results/text_throughput_sweep_<presets>_<gpu>.json)")
    args = parser.parse_args()
    if args.fetch:
        fetch()
        return
    if args.fetch_from:
        fetch_from_mirrors(Path(args.fetch_from))
        return
    if args.small:  # SMALL as the defaults: what the command line gives still wins
        parser.set_defaults(**SMALL)
        args = parser.parse_args()
        torch.set_num_threads(1)  # a tiny model: intra-op threads only add synchronisation
    overrides = decode_overrides(args.decode, args.compile, args.sync_every)
    presets = names(args.presets, PRESETS, "--presets")
    rules = names(args.rules, BUILTIN_RULES, "--rules")
    sweep_rules = names(args.sweep_rules, BUILTIN_RULES, "--sweep-rules")
    caches = names(args.caches, ("none", "prefix", "dual"), "--caches")
    sweep_caches = names(args.sweep_caches, ("none", "prefix", "dual"), "--sweep-caches")
    args.capture_list = names(args.captures, ("auto", "on", "off"), "--captures")
    labels = names(args.references, ("fast_dllm", "lean"), "--references")
    args.prompt_list = ints(args.prompts)
    device = torch.device(args.device)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    out = Path(args.out or f"benchmarks/results/text_throughput_sweep_{'_'.join(presets)}_{gpu_tag(device_name)}.json")
    if not any(PRESETS[name].references for name in presets):
        labels = []
    missing = references_missing() if labels else None
    if missing:
        print(f"reference loops skipped: {missing}", flush=True)
        labels = []
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    copy_bw = bandwidth(device, 2048 if device.type == "cuda" else 64)
    gemm = gemm_peak(device, dtype, 8192 if device.type == "cuda" else 256)
    rows: list[dict] = []
    skipped: list[dict] = []
    infos: dict[str, dict] = {}

    def report() -> dict:
        return dict(benchmark="text_throughput_sweep", device=str(device), device_name=device_name, dtype=args.dtype,
                    torch=torch.__version__, prompts=args.prompt_list, gen=args.gen, block=args.block,
                    decode=overrides, keep_graphs=args.keep_graphs, copy_bandwidth_gbs=copy_bw / 1e9,
                    gemm_tflops=gemm / 1e12, budget_s=args.budget_s, elapsed_s=time.monotonic() - started,
                    presets=infos, reference_error=missing, targets=targets(rows), skipped=skipped, rows=rows)

    def write() -> None:
        """Rewrite the JSON, so that a run cut short keeps every finished row; through a rename, so that a run killed
        while writing (``timeout`` on the device) leaves the previous file whole."""
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_suffix(".partial")
        partial.write_text(json.dumps(report(), indent=1) + "\n")
        partial.replace(out)

    print(json.dumps(dict(device_name=device_name, copy_bandwidth_gbs=copy_bw / 1e9, gemm_tflops=gemm / 1e12)))
    for name in presets:
        if args.budget_s is not None and time.monotonic() - started > args.budget_s:
            skipped.append(dict(preset=name, kind="preset"))
            continue
        build_start = time.monotonic()
        run = PresetRun(name, args, device, copy_bw, gemm, labels, overrides)
        infos[name] = dict(run.info(), build_s=time.monotonic() - build_start)
        specs = plan(rules, caches, args.capture_list, ints(args.batches), args.prompt_list,
                     ints(args.detail_batches), sweep_rules, sweep_caches, run.labels,
                     args.profile)
        last_reference = max((i for i, s in enumerate(specs) if s.kind == "reference"), default=None)
        write()
        for i, spec in enumerate(specs):
            estimate = run.estimate_s(spec, rows)
            elapsed = time.monotonic() - started
            if args.budget_s is not None and elapsed + estimate > args.budget_s:
                skipped.append(dict(preset=name, **spec.key(), estimate_s=round(estimate, 1)))
                print(f"skipped (expected {estimate:.0f} s, {args.budget_s - elapsed:.0f} s left): {spec.key()}",
                      flush=True)
            else:
                try:
                    row = run.measure(spec)
                except RuntimeError as error:  # out of memory, most likely: the other measurements can still run
                    row = dict(run.row(spec, failed=str(error).splitlines()[0][:300]), kind="failed", of=spec.kind)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                row.update(t_s=time.monotonic() - started, estimate_s=estimate)
                rows.append(row)
                print(json.dumps(row), flush=True)
            if i == last_reference:
                run.drop_reference_model()
            write()
        del run
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps({k: v for k, v in report().items() if k not in ("rows", "targets")}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
