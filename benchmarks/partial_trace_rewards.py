"""Partial-trace rewards on a house template model: does the answer log-likelihood predict correctness early?

Decode ``--n`` held-out problems (one token per step unless ``--steps``) while ``AnswerScoreRecorder`` scores the
partial trace after every step with the gold answer's mean log-likelihood; then report, at each stage of decoding,
the Pearson correlation with final correctness of that score and of two baselines (minus the answer block's entropy
bound H_UB, the fraction of reasoning decoded). Writes JSON and a plot. ``measure`` is what reasoning_suite.py calls.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import mdsample
from mdsample import plugin_manager
from mdsample.api import resolve_device
from mdsample.core import BlockSchedule, TokenChooser, decode
from mdsample.core.trace_scores import AnswerScoreRecorder, correlation_by_progress


def measure(n: int, *, task: str = "arithmetic", model: str | None = None, sampler: str = "confidence",
            steps: int | None = None, temperature: float = 0.0, device: str = "auto",
            options: dict | None = None) -> dict:
    """Decode ``n`` held-out problems of a template task while scoring every partial trace; the report's numbers."""
    device = resolve_device(device)
    domain = plugin_manager.load_domain("text")
    opts = domain.Options(task=task, model=model, **(options or {}))
    denoiser = domain.load_denoiser(opts, device)
    initial = domain.initial_state(denoiser, opts, n, device)
    task_, vocab = initial.task, initial.vocab
    gold = torch.tensor([task_.answer_ids(p.answer, vocab) for p in initial.problems], device=device)
    reasoning = torch.arange(task_.reasoning_slots().start, task_.reasoning_slots().stop, device=device)
    recorder = AnswerScoreRecorder(denoiser, initial.answer, gold, reasoning.expand(n, -1))
    rule_cls = plugin_manager.get_rule(sampler)
    result = decode(denoiser, initial.state, rule_cls(rule_cls.Config()), schedule=BlockSchedule(steps),
                    chooser=TokenChooser(temperature), generator=torch.Generator(device).manual_seed(0),
                    callbacks=[recorder])
    correct = np.array([o["correct"] for o in domain.decode(result.tokens, initial)], dtype=float)
    stages = np.round(np.linspace(0.1, 1.0, 10), 2)
    corr = correlation_by_progress(recorder.table(result.nfe), correct, stages)
    return {"benchmark": "partial_trace_rewards", "task": task, "n": n, "sampler": sampler, "steps": steps,
            "temperature": temperature, "accuracy": float(correct.mean()), "stages": stages.tolist(),
            "pearson": corr, "device": str(device), "version": mdsample.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--task", default="arithmetic", help="a template task: arithmetic or chain")
    parser.add_argument("--model", default=None, help="house model of the task (default: the shipped one)")
    parser.add_argument("--sampler", default="confidence")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--replot", default=None, help="only redraw --plot from this JSON report")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text()), Path(args.plot))
        return
    report = measure(args.n, task=args.task, model=args.model, sampler=args.sampler, steps=args.steps,
                     temperature=args.temperature, device=args.device)
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    if args.plot:
        plot(report, Path(args.plot))


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    names = {"score": "answer log-likelihood", "neg_h_ub": "-H_UB (answer entropy bound)",
             "reasoning": "fraction of reasoning decoded"}
    for key, label in names.items():
        ax.plot(report["stages"], report["pearson"][key], "o-", label=label)
    ax.set(xlabel="decoding progress (step / final NFE)", ylabel="Pearson r with final correctness",
           title=f"partial-trace rewards, {report['sampler']}, accuracy {report['accuracy']:.3f}")
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
