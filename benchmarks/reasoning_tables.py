"""Markdown tables of reasoning_suite.py's results JSON, one per finding, with the issue's targets checked.

``render(results)`` gives the tables for whatever phases the JSON holds; ``python benchmarks/reasoning_tables.py
RESULTS.json`` prints them. Numbers are read from the JSON only, so the tables can be redrawn from a returned file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

LABELS = {"k1": "confidence, one position per step (k = 1)", "answer_first": "answer first, then reasoning",
          "k2": "confidence, k = 2 per step", "k4": "confidence, k = 4 per step", "med": "MED, lambda 0.2",
          "early_exit": "confidence + early exit, gamma 0.1", "med_early_exit": "MED 0.2 + early exit 0.1"}
PREDICTORS = {"score": "answer log-likelihood", "neg_h_ub": "-H_UB", "reasoning": "fraction of reasoning decoded"}


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def _rows(results: dict) -> dict[str, dict]:
    return {r["label"]: r for r in results.get("shipped", {}).get("rows", [])}


def reasoning_table(results: dict) -> list[str]:
    """Full reasoning against answer first, for the shipped model and the base."""
    rows = _rows(results)
    ft = results.get("finetune", {})
    base = {r["label"]: r for r in ft.get("base", [])}
    out = ["| model | full reasoning | answer first |", "|---|---|---|"]
    if "k1" in rows:
        out.append(f"| shipped (every problem traced) | {_fmt(rows['k1']['accuracy'])} | "
                   f"{_fmt(rows.get('answer_first', {}).get('accuracy'))} |")
    if base:
        out.append(f"| base (traces for {results['trace_fraction']:.0%} of problems) | "
                   f"{_fmt(base['full']['accuracy'])} | {_fmt(base['answer_first']['accuracy'])} |")
    return out if len(out) > 2 else []


def finetune_table(results: dict) -> list[str]:
    """Base, posterior and gold arms: every seed, mean and standard deviation."""
    ft = results.get("finetune")
    if not ft:
        return []
    base = {r["label"]: r for r in ft["base"]}["full"]["accuracy"]
    out = ["| model | accuracy per seed | mean +- std | vs base (points) |", "|---|---|---|---|",
           f"| base | {_fmt(base)} | {_fmt(base)} | 0 |"]
    for arm, name in (("posterior", "base + posterior traces"), ("gold", "base + gold traces, same problems")):
        acc = np.array([r["accuracy"] for r in ft[arm]])
        out.append(f"| {name} | {', '.join(_fmt(a) for a in acc)} | {_fmt(acc.mean())} +- {_fmt(acc.std(ddof=0))} "
                   f"| {100 * (acc.mean() - base):+.1f} |")
    return out


def sampler_table(results: dict) -> list[str]:
    """Every decoding setting of the shipped model against one position per step."""
    rows = _rows(results)
    if "k1" not in rows:
        return []
    ref = rows["k1"]
    out = ["| setting | mean NFE | NFE vs k = 1 | accuracy | vs k = 1 (points) | early-exit rate |",
           "|---|---|---|---|---|---|"]
    for label, r in rows.items():
        out.append(f"| {LABELS.get(label, label)} | {r['nfe_mean']:.2f} | {ref['nfe_mean'] / r['nfe_mean']:.2f}x | "
                   f"{_fmt(r['accuracy'])} | {100 * (r['accuracy'] - ref['accuracy']):+.1f} | "
                   f"{_fmt(r.get('early_exit_rate'), 2)} |")
    return out


def correlation_table(results: dict) -> list[str]:
    """Per model (its accuracy beside its name), each predictor's Pearson r at each stage of decoding."""
    models = results.get("correlation", {})
    if not models:
        return []
    stages = next(iter(models.values()))["stages"]
    out = ["| model | predictor | " + " | ".join(f"{s:.1f}" for s in stages) + " |", "|---" * (len(stages) + 2) + "|"]
    for model, corr in models.items():
        for key, name in PREDICTORS.items():
            out.append(f"| {model} ({_fmt(corr['accuracy'])}) | {name} | "
                       + " | ".join(_fmt(v, 2) for v in corr["pearson"][key]) + " |")
    return out


def targets(results: dict) -> list[str]:
    """The issue's targets with the measured values: met or missed."""
    rows, ft, out = _rows(results), results.get("finetune"), []

    def line(name: str, ok: bool, value: str) -> None:
        out.append(f"- {name}: {value} -> **{'met' if ok else 'missed'}**")

    if {"k1", "answer_first"} <= rows.keys():
        full, first = rows["k1"]["accuracy"], rows["answer_first"]["accuracy"]
        line("full reasoning >= 0.90, answer first <= 0.40", full >= 0.9 and first <= 0.4,
             f"{full:.3f} / {first:.3f}")
    if ft:
        base = {r["label"]: r for r in ft["base"]}["full"]["accuracy"]
        post = float(np.mean([r["accuracy"] for r in ft["posterior"]]))
        gold = float(np.mean([r["accuracy"] for r in ft["gold"]]))
        line("posterior >= base + 10 points", post >= base + 0.10, f"{post:.3f} vs {base:.3f}")
        line("posterior >= gold - 3 points", post >= gold - 0.03, f"{post:.3f} vs {gold:.3f}")
    if {"k1", "k2", "k4"} <= rows.keys():
        k1, k2, k4 = (rows[k]["accuracy"] for k in ("k1", "k2", "k4"))
        line("fixed k = 2 or 4 loses accuracy", k2 < k1 or k4 < k1, f"{k1:.3f} -> {k2:.3f} (k=2), {k4:.3f} (k=4)")
    for label, name, ratio, saving in (("med", "MED within 1 point at >= 2.5x fewer NFE", 2.5, None),
                                       ("early_exit", "early exit cuts >= 20% of NFE within 1 point", None, 0.2)):
        if {"k1", label} <= rows.keys():
            k1, r = rows["k1"], rows[label]
            fewer = k1["nfe_mean"] / r["nfe_mean"]
            close = r["accuracy"] >= k1["accuracy"] - 0.01
            enough = fewer >= ratio if ratio else 1 - 1 / fewer >= saving
            line(name, close and enough, f"{r['accuracy']:.3f} vs {k1['accuracy']:.3f} at {fewer:.2f}x fewer NFE")
    return out


def render(results: dict) -> str:
    """Every table the results allow, each under a heading, then the targets."""
    parts = []
    sections = (("The reasoning matters (chain task, held-out problems)", reasoning_table),
                ("Post-training from one base", finetune_table),
                ("Decoding rules on the shipped model", sampler_table),
                ("Partial-trace rewards: Pearson r with final correctness by decoding progress", correlation_table))
    for title, fn in sections:
        lines = fn(results)
        if lines:
            parts.append(f"#### {title}\n\n" + "\n".join(lines))
    post = results.get("posterior")
    if post:
        parts.append(f"Posterior traces: {post['traces']} sampled, {post['kept']} kept by "
                     f"{post.get('keep_by', 'score')}; exact trace {post['exact_trace_rate']:.3f}, sound steps "
                     f"{post['step_accuracy']:.3f}, mean score {post['score_mean']:.4f}.")
    checked = targets(results)
    if checked:
        parts.append("#### Targets\n\n" + "\n".join(checked))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text())), end="")
