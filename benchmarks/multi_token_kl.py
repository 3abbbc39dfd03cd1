"""Multi-token decoding error of every rule: KL(q_rule || p_sequential) on the house text models.

For each rule, decode ``--n`` held-out problems at temperature 1, then recompute each finished canvas's
log-likelihood twice from its recorded commit steps (core/likelihood.py): as the rule sampled it (positions of one
step scored from the same canvas) and one token at a time in the same order. The mean difference estimates the KL
the paper ("No Compute Left Behind", Table 6) reports; one token per step gives exactly 0. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import mdsample
from mdsample import plugin_manager
from mdsample.api import resolve_device
from mdsample.core import BlockSchedule, TokenChooser, decode
from mdsample.core.likelihood import order_log_likelihood

GEN = {"arithmetic": 43, "sudoku": 45}
SETTINGS: list[tuple[str, dict, str]] = [
    ("confidence", {}, "full"),
    ("confidence", {}, "half"),
    ("confidence", {}, "quarter"),
    ("klass", {"conf_threshold": 0.9, "kl_threshold": 0.01}, "full"),
    ("klass", {"conf_threshold": 0.6, "kl_threshold": 0.05}, "full"),
    ("med", {"entropy_threshold": 0.2}, "full"),
    ("med", {"entropy_threshold": 0.5}, "full"),
    ("ar_med", {"entropy_threshold": 0.2}, "full"),
    ("eb", {"gamma": 0.1}, "full"),
    ("threshold", {"threshold": 0.9}, "full"),
    ("threshold", {"threshold": 0.7}, "full"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--tasks", default="arithmetic,sudoku")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    domain = plugin_manager.load_domain("text")
    rows = []
    for task in args.tasks.split(","):
        options = domain.Options(task=task)
        denoiser = domain.load_denoiser(options, device)
        for rule, config, steps in SETTINGS:
            initial = domain.initial_state(denoiser, options, args.n, device)
            n_steps = {"full": None, "half": GEN[task] // 2, "quarter": GEN[task] // 4}[steps]
            rule_cls = plugin_manager.get_rule(rule)
            result = decode(denoiser, initial.state, rule_cls(rule_cls.Config(**config)),
                            schedule=BlockSchedule(n_steps), chooser=TokenChooser(1.0),
                            generator=torch.Generator(device).manual_seed(0), confidence="mode")
            q = order_log_likelihood(denoiser, result.tokens, result.commit_step, parallel=True)
            p = order_log_likelihood(denoiser, result.tokens, result.commit_step, parallel=False)
            correct = [o["correct"] for o in domain.decode(result.tokens, initial)]
            row = {"task": task, "rule": rule, "config": config, "steps": steps, "n": args.n,
                   "kl": float((q - p).mean()), "kl_sem": float((q - p).std() / args.n**0.5),
                   "nfe_mean": float(result.nfe.double().mean()), "accuracy_t1": sum(correct) / len(correct)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {"benchmark": "multi_token_kl", "n": args.n, "device": str(device), "version": mdsample.__version__,
              "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
