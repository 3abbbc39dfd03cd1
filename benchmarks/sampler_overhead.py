"""Per-step cost of every selection rule relative to one denoiser forward on the same inputs.

For each rule and batch size: time decode() over ``--gen`` positions (blocks of ``--block``, one token per step)
behind a ``--prompt``-token prompt, divide by the number of steps, and divide by the time of a bare forward on a
canvas of the same shape. A ratio of 1.00 means the loop and the rule cost nothing beyond the model.
Prints and writes JSON. CPU: ``python benchmarks/sampler_overhead.py``; GPU (LLaDA-8B shape, bf16):
``python benchmarks/sampler_overhead.py --shape llada8b --device cuda --dtype bfloat16``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lean_llada import build  # noqa: E402

from mdsample.core import BlockSchedule, MaskedState, decode  # noqa: E402
from mdsample.core.rules import BUILTIN_RULES  # noqa: E402

RULE_OPTIONS = {"klass": {"conf_threshold": 2.0}}
"""KLASS with an unreachable confidence threshold keeps the full history machinery running at one token per step."""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_forward(model, tokens: torch.Tensor, repeats: int) -> float:
    model(tokens)
    sync(tokens.device)
    start = time.perf_counter()
    for _ in range(repeats):
        model(tokens)
    sync(tokens.device)
    return (time.perf_counter() - start) / repeats


def time_rule(model, name: str, batch: int, args, device: torch.device) -> tuple[float, int]:
    prompt = torch.randint(0, 1000, (1, args.prompt), device=device)
    rule = BUILTIN_RULES[name](**RULE_OPTIONS.get(name, {}))
    schedule = BlockSchedule(steps=args.gen, block_length=args.block)
    state = MaskedState.blank(batch, args.gen, model.mask_id, prompt=prompt, device=device)
    sync(device)
    start = time.perf_counter()
    result = decode(model, state, rule, schedule=schedule, stats_dtype=torch.float32,
                    generator=torch.Generator(device).manual_seed(0))
    sync(device)
    return (time.perf_counter() - start) / result.steps, result.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="cpu", choices=["cpu", "llada8b"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--gen", type=int, default=64)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--rules", default=",".join(sorted(BUILTIN_RULES)))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", default=None, help="JSON file to write (default: print only)")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build(args.shape, device, getattr(torch, args.dtype))
    rows = []
    time_rule(model, "confidence", 1, args, device)  # warm-up of the device, the allocator and the kernels
    for batch in [int(b) for b in args.batches.split(",")]:
        canvas = torch.randint(0, 1000, (batch, args.prompt + args.gen), device=device)
        forward = time_forward(model, canvas, args.repeats)
        for name in args.rules.split(","):
            time_rule(model, name, batch, args, device)  # warm-up: allocator, kernels
            per_step, steps = time_rule(model, name, batch, args, device)
            row = dict(rule=name, batch=batch, forward_ms=forward * 1e3, step_ms=per_step * 1e3,
                       ratio=per_step / forward, steps=steps)
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = dict(
        benchmark="sampler_overhead", shape=args.shape, device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        dtype=args.dtype, prompt=args.prompt, gen=args.gen, block=args.block, torch=torch.__version__, rows=rows,
        max_ratio=max(r["ratio"] for r in rows),
    )
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}))


if __name__ == "__main__":
    main()
