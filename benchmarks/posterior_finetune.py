"""Posterior fine-tuning at small scale: does training on r ~ p(r | c, a) teach a model to reason?

The experiment of "No Compute Left Behind" (arXiv 2510.19990), on the house arithmetic task:
1. a base model trained with reasoning traces for only ``trace_fraction`` of its problems (answers alone for the
   rest: ``mdsample train --domain text --task arithmetic domain.trace_fraction=0.1``), given as ``--base``;
2. posterior traces for ``--traces`` train problems the base model saw without reasoning (``mdsample posterior``);
3. fine-tuning the base model on them, with and without filtering by the answer log-likelihood (``--init``,
   ``--data``, ``domain.min_score`` at the ``--keep`` quantile of the scores);
4. accuracy of all three models on the same ``--n`` held-out problems (confidence, one token per step).
Every step is an ordinary mdsample command; the JSON report lists them with the numbers.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

import mdsample


def sh(args: list[str], log: list[str]) -> None:
    log.append(shlex.join(["mdsample", *args]))
    print("$", log[-1], flush=True)
    subprocess.run([sys.executable, "-m", "mdsample.cli", *args], check=True)


def accuracy(model: str, args) -> dict:
    result = mdsample.sample("text", "confidence", args.n, seed=0, device=args.device, progress=False,
                             batch_size=1000, out=str(Path(args.work) / "eval" / Path(model).name),
                             **{"domain.task": "arithmetic", "domain.model": model})
    return {"accuracy": result.metrics["accuracy"], "nfe_mean": result.metrics["nfe_mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base model directory (trained with domain.trace_fraction)")
    parser.add_argument("--trace-fraction", type=float, default=0.1)
    parser.add_argument("--traces", type=int, default=20000)
    parser.add_argument("--keep", type=float, default=0.5, help="fraction of traces kept by the score filter")
    parser.add_argument("--steps", type=int, default=3000, help="fine-tuning steps")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work", default="runs/posterior_finetune")
    parser.add_argument("--train-set", nargs="*", default=[], help="extra train.KEY=VALUE for fine-tuning")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work, log = Path(args.work), []
    work.mkdir(parents=True, exist_ok=True)
    traces = work / "traces.jsonl"
    sh(["posterior", "--task", "arithmetic", "--model", args.base, "--sampler", "confidence", "-n", str(args.traces),
        "--out", str(traces), "--device", args.device, f"domain.trace_fraction={args.trace_fraction}",
        "batch_size=2000", "progress=false"], log)
    scores = np.array([json.loads(line)["score"] for line in traces.read_text().splitlines()])
    cut = float(np.quantile(scores, 1 - args.keep))
    models = {"base": args.base}
    for name, extra in (("unfiltered", []), ("filtered", [f"domain.min_score={cut}"])):
        out = work / name
        sh(["train", "--domain", "text", "--task", "arithmetic", "--init", args.base, "--data", str(traces),
            "--out", str(out), f"train.steps={args.steps}", "train.warmup=100", "train.lr=3e-4",
            f"train.eval_every={max(1, args.steps // 5)}", *extra, *args.train_set], log)
        models[name] = str(out)
    rows = {name: accuracy(path, args) for name, path in models.items()}
    report = {"benchmark": "posterior_finetune", "trace_fraction": args.trace_fraction, "traces": len(scores),
              "score_cut": cut, "kept": int((scores >= cut).sum()), "score_mean": float(scores.mean()),
              "steps": args.steps, "n": args.n, "commands": log, "results": rows, "version": mdsample.__version__}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
