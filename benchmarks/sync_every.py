"""decode.sync_every on the LLaDA-8B shape (issue 18): whole-decode ms per step and tokens/s against N.

The loop syncs with the host once per N steps (core/multistep.py). Once it no longer syncs every step, a per-step
callback's timestamps mark when the host enqueued a step, not when the GPU finished it, so this times whole decodes
(each ends with the loop's last sync) and reports ``e2e_step_ms`` = decode wall-clock / steps. Every decode builds
its CUDA graphs afresh; that cost is in every row alike. Each row also says whether its tokens equal N = 1's
(``same_tokens``: they must). Model and canvas as benchmarks/text_throughput.py (its ``build``): random weights,
prompt 128 + generation 256, blocks of 32, one token per step; KLASS with an unreachable confidence threshold.

   python benchmarks/sync_every.py --device cuda --out benchmarks/results/sync_every_h200.json
   python benchmarks/sync_every.py --small          (CPU smoke test, seconds)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from text_throughput import PRESETS, RULE_OPTIONS, build, sync

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.rules import BUILTIN_RULES
from mdsample.models.cached import CachedLean

OPTIONS = {**RULE_OPTIONS, "threshold": {"threshold": 0.9}}
MASK_ID = PRESETS["llada8b"].mask_id
"""LLaDA's mask id (the small shape keeps LLaDA's vocabulary, so it serves both)."""


def timed(den: CachedLean, rule: str, batch: int, cache: str, every: int, args, prompt: torch.Tensor) -> tuple:
    device = prompt.device
    state = MaskedState.blank(batch, args.gen, MASK_ID, prompt=prompt.expand(batch, -1), device=device)
    sync(device)
    start = time.perf_counter()
    result = decode(den, state, BUILTIN_RULES[rule](**OPTIONS.get(rule, {})),
                    schedule=BlockSchedule(args.gen, args.block), cache=cache, capture="auto", sync_every=every)
    total = time.perf_counter() - start
    row = dict(rule=rule, batch=batch, cache=cache, sync_every=every, steps=result.steps, syncs=result.syncs,
               graphs=result.graphs, nfe_mean=result.nfe.float().mean().item(), e2e_step_ms=total / result.steps * 1e3,
               tokens_per_s=batch * args.gen / total)
    return row, result.tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="CPU smoke test: small shape, short canvas, fp32")
    parser.add_argument("--shape", default="llada8b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--every", default="1,2,4,8,16")
    parser.add_argument("--rules", default="confidence,klass,threshold")
    parser.add_argument("--caches", default="none,dual")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=256)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    args = parser.parse_args()
    if args.small:
        args.shape, args.device, args.dtype, args.prompt, args.gen, args.block = "small", "cpu", "float32", 8, 16, 8
        args.batches = "1,2" if args.batches == "1,8" else args.batches
        torch.set_num_threads(1)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, _ = build(args.shape, device, getattr(torch, args.dtype), False)
    den = CachedLean(model, MASK_ID)
    prompt = torch.randint(0, 1000, (1, args.prompt), device=device)
    warm = argparse.Namespace(gen=args.block, block=args.block)
    rows: list[dict] = []
    for batch in (int(b) for b in args.batches.split(",")):
        for cache in args.caches.split(","):
            timed(den, "confidence", batch, cache, 1, warm, prompt)  # kernels, allocator, cuBLAS
        for rule in args.rules.split(","):
            for cache in args.caches.split(","):
                first = None
                for every in (int(n) for n in args.every.split(",")):
                    row, tokens = timed(den, rule, batch, cache, every, args, prompt)
                    first = tokens if first is None else first
                    row["same_tokens"] = bool(torch.equal(tokens, first))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if args.out:
                        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                        Path(args.out).write_text(json.dumps(dict(
                            benchmark="sync_every", shape=args.shape, device=str(device), dtype=args.dtype,
                            prompt=args.prompt, gen=args.gen, block=args.block, torch=torch.__version__,
                            device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                            rows=rows), indent=2) + "\n")


if __name__ == "__main__":
    main()
