"""Does the step-checking ``trace_score`` make posterior traces worth fine-tuning on? A small probe (issue 19).

Reads the posterior traces of a base chain model (``mdsample posterior --task chain --model BASE ...``, whose lines
carry ``score``, the answer's log-likelihood, and ``trace_score``, the trace's pseudo-likelihood), reports how well
each score tells exact traces from the rest, then fine-tunes the base on four trace sets with the same steps:
every posterior trace, the top ``--top`` fraction by ``trace_score``, and the gold traces of those same two problem
sets; each model's accuracy on ``--n-eval`` held-out chains. Small enough for a CPU (the numbers are a probe of the
direction, not the suite's full-scale arms):

    mdsample posterior --task chain --model BASE -n 2000 --out post.jsonl --device cpu domain.ops=8 \\
        domain.trace_fraction=0.1 batch_size=500 progress=false
    python benchmarks/trace_score_probe.py --base BASE --traces post.jsonl --work /tmp/probe --out result.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

import mdsample
from mdsample.plugins.text.tasks.chain import ChainTask


def accuracy(model: str, args: argparse.Namespace) -> float:
    result = mdsample.sample("text", "confidence", args.n_eval, seed=0, device=args.device, progress=False,
                             batch_size=500, out=str(args.work / f"eval_{Path(model).name}"),
                             **{"domain.task": "chain", "domain.model": model, "domain.ops": args.ops})
    return result.metrics["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the base chain model (house model directory)")
    parser.add_argument("--traces", required=True, type=Path, help="mdsample posterior's jsonl from that base")
    parser.add_argument("--work", type=Path, default=Path("/tmp/trace_score_probe"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--top", type=float, default=0.25, help="fraction kept by trace_score")
    parser.add_argument("--ops", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    task = ChainTask(ops=args.ops)
    records = [json.loads(line) for line in args.traces.read_text().splitlines()]
    trace_score = np.array([r["trace_score"] for r in records])
    exact = np.array([r["trace"] == task.parse_prompt(r["prompt"]).reasoning for r in records])
    top = trace_score >= np.quantile(trace_score, 1 - args.top)
    gold = [{**r, "trace": task.parse_prompt(r["prompt"]).reasoning} for r in records]
    arms = {"post_all": records, f"post_top{round(100 * args.top)}": [r for r, k in zip(records, top) if k],
            "gold_all": gold, f"gold_top{round(100 * args.top)}": [g for g, k in zip(gold, top) if k]}
    out = {"traces": len(records), "exact_all": float(exact.mean()), "exact_top": float(exact[top].mean()),
           "exact_rest": float(exact[~top].mean()),
           "corr_trace_score_exact": float(np.corrcoef(trace_score, exact)[0, 1]),
           "corr_answer_score_exact": float(np.corrcoef([r["score"] for r in records], exact)[0, 1]),
           "steps": args.steps, "batch_size": args.batch_size, "n_eval": args.n_eval, "arms": {}}
    out["base"] = accuracy(args.base, args)
    for name, rows in arms.items():
        data = args.work / f"{name}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        start = time.perf_counter()
        with open(args.work / f"{name}.log", "w") as log:
            subprocess.run(["mdsample", "train", "--domain", "text", "--task", "chain", "--out", str(args.work / name),
                            f"domain.ops={args.ops}", f"train.device={args.device}", "train.size=deep",
                            f"train.batch_size={args.batch_size}", "train.compile=false",
                            "train.checkpoint_minutes=null", "--init", args.base, "--data", str(data),
                            f"train.steps={args.steps}", "train.warmup=20", "train.lr=0.0003", "train.seed=0",
                            "train.eval_every=100"], check=True, stdout=log, stderr=subprocess.STDOUT)
        out["arms"][name] = {"n": len(rows), "accuracy": accuracy(str(args.work / name), args),
                             "train_s": time.perf_counter() - start}
        print(name, out["arms"][name], flush=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
