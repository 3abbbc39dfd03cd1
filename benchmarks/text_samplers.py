"""Accuracy vs NFE of every selection rule on the shipped text models (sudoku, arithmetic), GPU or CPU.

For each task and each setting of the grid, solve the same ``--n`` held-out problems with ``mdsample.sample`` and
record accuracy, mean NFE per problem and sampling wall-clock per 1,000 problems. The grid holds the papers'
comparisons: one token per step (the baseline), fixed k = 2 and k = 4 tokens per step, the adaptive rules (KLASS,
MED, AR-MED, EB, threshold), the other baselines, and answer-block early exit on arithmetic alone and combined.
Writes JSON (one object per setting) and, with ``--plot``, accuracy vs NFE per task.
CPU: ``python benchmarks/text_samplers.py --n 200``; GPU: ``--n 1000 --device cuda``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mdsample

FULL = {"decode.steps": None}  # one token per step
GRID: list[tuple[str, dict]] = [
    ("confidence", FULL),
    ("confidence", {"decode.steps": "half"}),
    ("confidence", {"decode.steps": "quarter"}),
    ("random", FULL),
    ("margin", FULL),
    ("entropy", FULL),
    ("maskgit", {"decode.steps": 12}),
    ("klass", {"sampler.conf_threshold": 0.9, "sampler.kl_threshold": 0.01}),
    ("klass", {"sampler.conf_threshold": 0.8, "sampler.kl_threshold": 0.02}),
    ("klass", {"sampler.conf_threshold": 0.6, "sampler.kl_threshold": 0.05}),
    ("med", {"sampler.entropy_threshold": 0.1}),
    ("med", {"sampler.entropy_threshold": 0.2}),
    ("med", {"sampler.entropy_threshold": 0.5}),
    ("ar_med", {"sampler.entropy_threshold": 0.2}),
    ("eb", {"sampler.gamma": 0.1}),
    ("eb", {"sampler.gamma": 0.5}),
    ("threshold", {"sampler.threshold": 0.9}),
    ("threshold", {"sampler.threshold": 0.7}),
]
EARLY_EXIT: list[tuple[str, dict]] = [
    ("confidence", {"decode.early_exit": 0.1}),
    ("confidence", {"decode.early_exit": 0.5}),
    ("klass", {"sampler.conf_threshold": 0.9, "sampler.kl_threshold": 0.01, "decode.early_exit": 0.1}),
    ("med", {"sampler.entropy_threshold": 0.2, "decode.early_exit": 0.1}),
    ("ar_med", {"sampler.entropy_threshold": 0.2, "decode.early_exit": 0.1}),
]
GEN = {"arithmetic": 43, "sudoku": 45}  # masked slots of each house layout (36 sudoku givens)


def resolve(overrides: dict, task: str) -> dict:
    steps = overrides.get("decode.steps")
    if steps in ("half", "quarter"):
        return {**overrides, "decode.steps": GEN[task] // (2 if steps == "half" else 4)}
    return overrides


def run_setting(task: str, rule: str, overrides: dict, args) -> dict:
    runs = Path(args.runs) / task
    start = time.perf_counter()
    result = mdsample.sample(
        "text", rule, args.n, seed=args.seed, device=args.device, batch_size=args.batch_size, progress=False,
        out=str(runs / f"{rule}-{len(list(runs.glob(rule + '-*')))}"),
        **{"domain.task": task, **dict(kv.split("=", 1) for kv in args.set), **resolve(overrides, task)},
    )
    return {"task": task, "rule": rule, "settings": overrides, "n": args.n,
            "accuracy": result.metrics["accuracy"], "nfe_mean": result.metrics["nfe_mean"],
            "early_exit_rate": result.metrics.get("early_exit_rate"), "seconds": time.perf_counter() - start,
            "sampling_s_per_1000": result.metrics["wall_s_total"] * 1000 / args.n}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        mine = [r for r in rows if r["task"] == task]
        for label in dict.fromkeys(_label(r) for r in mine):
            pts = sorted((r["nfe_mean"], r["accuracy"]) for r in mine if _label(r) == label)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
        ax.set(title=task, xlabel="mean NFE per problem", ylabel="accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _label(row: dict) -> str:
    return row["rule"] + (" + early exit" if "decode.early_exit" in row["settings"] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--tasks", default="arithmetic,sudoku")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/text_samplers")
    parser.add_argument("--rules", default=None, help="comma list to restrict the grid")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every setting")
    parser.add_argument("--out", default=None, help="JSON file to write")
    parser.add_argument("--plot", default=None, help="PNG file to write")
    args = parser.parse_args()
    wanted = set(args.rules.split(",")) if args.rules else None
    rows = []
    for task in args.tasks.split(","):
        Path(args.runs, task).mkdir(parents=True, exist_ok=True)
        for rule, overrides in GRID + (EARLY_EXIT if task == "arithmetic" else []):
            if wanted and rule not in wanted:
                continue
            row = run_setting(task, rule, overrides, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                report = {"benchmark": "text_samplers", "n": args.n, "set": args.set, "device": args.device,
                          "version": mdsample.__version__, "rows": rows}
                Path(args.out).write_text(json.dumps(report, indent=2))
    if args.plot:
        plot(rows, Path(args.plot))


if __name__ == "__main__":
    main()
