"""Writing a text run: ``samples.jsonl`` (one line per row) and ``decode_order.png`` (which step filled what).

The jsonl keeps everything needed to re-score a run: prompt, full completion (``_`` marks a slot left masked by
early exit), reasoning, answer, gold answer, correctness, NFE and whether the row exited early. The picture shows,
for the first rows, every generated position coloured by the step that committed it and labelled with its
character: the decode order that distinguishes one rule from another at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mdsample.core.state import MaskedState

ORDER_ROWS = 6


def save_samples(
    objects: list[dict[str, Any]], run_dir: Path, state: MaskedState, labels: list[list[str]]
) -> list[Path]:
    """``labels[r][c]``: what to print at generation position c of row r (the first rows are drawn)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "samples.jsonl"
    nfe, exited = state.nfe.tolist(), state.exited.tolist()
    with open(path, "w") as f:
        for i, obj in enumerate(objects):
            f.write(json.dumps({**obj, "nfe": nfe[i], "exited": exited[i]}) + "\n")
    picture = decode_order_png(objects[:ORDER_ROWS], state, labels, run_dir / "decode_order.png")
    return [path, picture]


def decode_order_png(
    objects: list[dict[str, Any]], state: MaskedState, labels: list[list[str]], path: Path
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = state.commit_step[: len(objects), state.gen_start :].cpu().double()
    steps[steps < 0] = float("nan")  # given (frozen) or never filled
    rows, width = steps.shape
    fig, ax = plt.subplots(figsize=(min(24, 2 + width * 0.22), 1 + rows * 0.5))
    image = ax.imshow(steps.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    for r in range(rows):
        for c, ch in enumerate(labels[r][:width]):
            ax.text(c, r, ch, ha="center", va="center", fontsize=6, color="white" if torch.isnan(steps[r, c]) else "k")
    ax.set_yticks(range(rows), [o["prompt"][:12] for o in objects], fontsize=7)
    ax.set_xlabel("position in the generation region")
    fig.colorbar(image, ax=ax, label="commit step")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
