"""Every rule's step against the plain loop's, with interleaved repeats (issue 18: "every rule's step <= 1.03x").

A single decode's ms per step varies by 5-20% between neighbouring measurements on a GPU (clocks, the host), which is
more than the 3% a rule may add; so this runs R rounds, and each round decodes once with every rule in turn (the
plain loop first), so that a drift hits every rule alike. A rule's verdict is the median over rounds of its
per-round ratio to the plain loop (``ratio``), next to the ratio of the medians. Whole decodes are timed
(decode wall-clock / steps, so ``sync_every`` N > 1 is timed right, see benchmarks/sync_every.py), with each
decode's CUDA graphs built afresh, the same for every rule (``--keep-graphs``: captured once per rule and batch in the
warm-up, as a run's later batches replay them); peak memory is the allocator's peak above what was
resident before the decode.

``--layers L`` builds the shape with L layers instead of its own: with one layer the GPU's share of a step is
small, so the step time measures the host's own cost per step (Python, the eager rule and commit, the graph
launches) -- the floor no kernel work can go under while the host is on the critical path.

Model and canvas as benchmarks/text_throughput.py (its ``build``): random weights, prompt 128 + generation 256,
blocks of 32, one token per step, KLASS with an unreachable confidence threshold (its KL test decides).

   python benchmarks/rule_step.py --device cuda --preset llada8b --batches 1,8 --repeats 3 --out FILE.json
   python benchmarks/rule_step.py --device cuda --batches 1 --rules confidence,klass --repeats 1 --profile \
       --check-syncs                          (where the time goes; anatomy())
   python benchmarks/rule_step.py --small        (CPU smoke test, about a minute)
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import statistics
import time
import warnings
from pathlib import Path

import torch
from text_throughput import PRESETS, RULE_OPTIONS, SHAPES, StepProfiler, build, sync

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.capture import KeptGraphs
from mdsample.core.compile import use_compile
from mdsample.core.rules import BUILTIN_RULES
from mdsample.models import blas

OPTIONS = {**RULE_OPTIONS, "threshold": {"threshold": 0.9}}
PLAIN = "confidence"


def run(den, preset, rule: str, batch: int, prompt: torch.Tensor, args, gen: int, callbacks=(), graphs=None):
    state = MaskedState.blank(batch, gen, preset.mask_id, prompt=prompt.expand(batch, -1), device=prompt.device)
    with attention_backend(args.attention):
        return decode(den, state, BUILTIN_RULES[rule](**OPTIONS.get(rule, {})),
                      schedule=BlockSchedule(gen, args.block), cache=args.cache, capture=args.capture,
                      sync_every=args.sync_every, generator=torch.Generator(prompt.device).manual_seed(0),
                      callbacks=callbacks, graphs=graphs)


def attention_backend(name: str):
    """``--attention``: PyTorch's own choice of SDPA kernel, or one forced (the captured graphs record it)."""
    if name == "default":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel({"efficient": SDPBackend.EFFICIENT_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                        "flash": SDPBackend.FLASH_ATTENTION, "math": SDPBackend.MATH}[name])


def timed(den, preset, rule: str, batch: int, prompt: torch.Tensor, args, gen: int,
          graphs: KeptGraphs | None = None) -> tuple[dict, torch.Tensor]:
    """One whole decode: ms per step, tokens/s, NFE, peak working memory (GiB above the resident)."""
    device = prompt.device
    sync(device)
    resident = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = run(den, preset, rule, batch, prompt, args, gen, graphs=graphs)
    sync(device)
    total = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    row = dict(rule=rule, batch=batch, steps=result.steps, syncs=result.syncs, graphs=result.graphs,
               capture_ms_per_step=result.capture_s / result.steps * 1e3,
               nfe_mean=result.nfe.float().mean().item(), e2e_step_ms=total / result.steps * 1e3,
               tokens_per_s=batch * gen / total, working_gb=(peak - resident) / 2**30, peak_gb=peak / 2**30)
    return row, result.tokens


def anatomy(den, preset, rule: str, batch: int, prompt: torch.Tensor, args) -> dict:
    """Where a step's time goes (``--profile``): the kernels of the cached steps inside the second block (after
    its refresh step, before the third block's; StepProfiler) and the idle gaps between them; and (``--check-syncs``,
    CUDA) every operation that made the host wait for the device in a whole decode, by source line, from PyTorch's
    sync debug mode -- the loop's own sync (one per ``sync_every`` steps) is expected, any other is a defect."""
    out: dict = dict(rule=rule, batch=batch)
    if args.profile:
        profiler = StepProfiler(args.block + 2, prompt.device, stop=2 * args.block)
        run(den, preset, rule, batch, prompt, args, args.gen, [profiler])
        out["profile"] = profiler.result
    if args.check_syncs and prompt.device.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = run(den, preset, rule, batch, prompt, args, args.gen)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        where = collections.Counter(f"{Path(w.filename).name}:{w.lineno}" for w in caught
                                    if "synchroniz" in str(w.message))
        out["syncs"] = dict(steps=result.steps, loop_syncs=result.syncs, total=sum(where.values()),
                            per_step=sum(where.values()) / result.steps, where=dict(where.most_common()))
    return out


def summarise(rows: list[dict], rules: list[str]) -> list[dict]:
    """Per batch and rule: the median step over rounds, the median of the per-round ratios to the plain loop (the
    verdict) and of the same ratios per NFE (a rule that spends more forwards, KLASS's peeks under the dual cache,
    against the plain loop's cost per forward), the ratio of the medians, the spread of the ratios, the peak working
    memory (above the resident) and the peak allocated memory (weights included, the issue's measure) against the
    plain loop's, and whether every round gave the same tokens."""
    out = []
    for batch in sorted({r["batch"] for r in rows}):
        here = [r for r in rows if r["batch"] == batch]
        plain = {r["round"]: r for r in here if r["rule"] == PLAIN}
        base = statistics.median(r["e2e_step_ms"] for r in plain.values())
        for rule in rules:
            mine = [r for r in here if r["rule"] == rule and r["round"] in plain]
            if not mine:
                continue
            ratios = [r["e2e_step_ms"] / plain[r["round"]]["e2e_step_ms"] for r in mine]
            per_nfe = [ratio * plain[r["round"]]["nfe_mean"] / r["nfe_mean"] for ratio, r in zip(ratios, mine)]
            step = statistics.median(r["e2e_step_ms"] for r in mine)
            memory = max(r["working_gb"] for r in mine)
            plain_memory = max(r["working_gb"] for r in plain.values())
            peak, plain_peak = max(r["peak_gb"] for r in mine), max(r["peak_gb"] for r in plain.values())
            out.append(dict(batch=batch, rule=rule, rounds=len(mine), step_ms=step, ratio=statistics.median(ratios),
                            ratio_per_nfe=statistics.median(per_nfe),
                            ratio_of_medians=step / base, ratio_min=min(ratios), ratio_max=max(ratios),
                            nfe_mean=mine[0]["nfe_mean"], working_gb=memory,
                            memory_ratio=memory / plain_memory if plain_memory > 0 else None, peak_gb=peak,
                            peak_ratio=peak / plain_peak if plain_peak > 0 else None,
                            same_tokens_every_round=all(r["same_tokens"] for r in mine)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CPU smoke test: small shape, short canvas, fp32")
    parser.add_argument("--preset", default="llada8b", choices=sorted(PRESETS))
    parser.add_argument("--layers", type=int, default=None, help="layers of the shape (default: its own)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rules", default="all", help="comma list of rules, or all (the plain loop always runs)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; each decodes once with every rule")
    parser.add_argument("--cache", default="dual", choices=["none", "prefix", "dual"])
    parser.add_argument("--capture", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--sync-every", type=lambda v: v if v == "auto" else int(v), default="auto",
                        help="decode.sync_every: auto (the default) or N")
    parser.add_argument("--compile", default="off", choices=["auto", "on", "off"])
    parser.add_argument("--attention", default="default", choices=["default", "efficient", "cudnn", "flash", "math"],
                        help="SDPA kernel (default: PyTorch's choice)")
    parser.add_argument("--keep-graphs", action="store_true", help="each rule keeps its CUDA graphs and KV cache "
                        "from its warm-up decode on (core/capture.py KeptGraphs, as a run's batches do): the timed "
                        "decodes capture nothing; every rule's cache then stays resident, outside working_gb")
    parser.add_argument("--blas", default="cublaslt", choices=["cublaslt", "default"],
                        help="the native modules' GEMM library (models/blas.py): cuBLASLt, or PyTorch's default")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="per batch and rule, a kernel profile of a block's "
                        "cached steps: kernels by kind and name, idle gaps (anatomy())")
    parser.add_argument("--check-syncs", action="store_true", help="per batch and rule (CUDA), the operations that "
                        "wait for the device, by source line (anatomy())")
    parser.add_argument("--out", default=None, help="JSON file, rewritten after every decode (default: print only)")
    args = parser.parse_args()
    if args.small:
        args.device, args.dtype, args.prompt, args.gen, args.block = "cpu", "float32", 8, 16, 8
        args.batches = "1,2" if args.batches == "1,8" else args.batches
        args.repeats = min(args.repeats, 2)
        torch.set_num_threads(1)
    preset = PRESETS[args.preset]
    shape = preset.small if args.small else preset.shape
    if args.layers is not None:
        name = f"{shape}_{args.layers}l"
        SHAPES[name] = dict(SHAPES[shape], num_layers=args.layers)
        shape = name
    rules = [PLAIN] + [r for r in (BUILTIN_RULES if args.rules == "all" else args.rules.split(",")) if r != PLAIN]
    unknown = [r for r in rules if r not in BUILTIN_RULES]
    if unknown:
        raise SystemExit(f"unknown rule(s) {unknown}; choose from {sorted(BUILTIN_RULES)}")
    blas.PREFERRED = None if args.blas == "default" else args.blas
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, _ = build(shape, device, getattr(torch, args.dtype), False)
    den = preset.denoiser(model, preset.mask_id)
    use_compile(den, args.compile, device)
    prompt = torch.randint(0, 1000, (1, args.prompt), device=device)
    rows: list[dict] = []
    anatomies: list[dict] = []
    first: dict[tuple, torch.Tensor] = {}

    def write() -> None:
        if not args.out:
            return
        report = dict(benchmark="rule_step", preset=args.preset, shape=shape, config=SHAPES[shape],
                      device=str(device), dtype=args.dtype, torch=torch.__version__,
                      device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                      prompt=args.prompt, gen=args.gen, block=args.block, cache=args.cache, capture=args.capture,
                      sync_every=args.sync_every, compile=args.compile, attention=args.attention, blas=args.blas,
                      repeats=args.repeats, keep_graphs=args.keep_graphs,
                      summary=summarise(rows, rules), anatomy=anatomies, rows=rows)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")

    for batch in (int(b) for b in args.batches.split(",")):
        kept = {rule: KeptGraphs() for rule in rules} if args.keep_graphs else {}
        for rule in rules:  # first-use costs (kernels, allocator, cuBLAS, cuDNN plans, compile): untimed, per rule
            timed(den, preset, rule, batch, prompt, args, args.gen, kept.get(rule))
        for round_ in range(args.repeats):
            for rule in rules:
                row, tokens = timed(den, preset, rule, batch, prompt, args, args.gen, kept.get(rule))
                key = (batch, rule)
                first.setdefault(key, tokens)
                rows.append(dict(row, round=round_, same_tokens=bool(torch.equal(tokens, first[key]))))
                print(json.dumps(rows[-1]), flush=True)
                write()
        for rule in rules if args.profile or args.check_syncs else []:
            anatomies.append(anatomy(den, preset, rule, batch, prompt, args))
            print(json.dumps({k: v for k, v in anatomies[-1].items() if k != "profile"}), flush=True)
            write()
    for line in summarise(rows, rules):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
