"""FD-glyph and conditional accuracy vs NFE of every selection rule on the house glyph model (GPU or CPU).

For each setting of the grid: sample ``--n`` glyphs with ``mdsample.sample`` (classes round-robin, same seed for
all settings), and record FD-glyph (held-out fonts, class-matched), the classifier's accuracy on the requested
classes, the IS-style score, pixel diversity, mean NFE per image and sampling seconds per 1,000 images. Every
registered rule runs: those without an entry in the grid once with their defaults. Writes JSON (one object per
setting) and a figure of FD-glyph and accuracy vs NFE.
GPU: ``python benchmarks/image_samplers.py --n 2000 --device cuda``; CPU smoke run: ``--n 64 --rules maskgit``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sweep import plot_quality_vs_nfe, setting_row

import mdsample

GEN = 64
"""Image positions of the glyph canvas (8x8 codes after the frozen class token): ``steps=64`` is one per step."""

GRID: list[tuple[str, dict]] = [
    ("maskgit", {"decode.steps": 4}),
    ("maskgit", {"decode.steps": 8}),
    ("maskgit", {"decode.steps": 12}),
    ("maskgit", {"decode.steps": 24}),
    ("maskgit", {"decode.steps": GEN}),
    ("confidence", {"decode.steps": 8}),
    ("confidence", {"decode.steps": 16}),
    ("confidence", {"decode.steps": GEN}),
    ("random", {"decode.steps": 16}),
    ("random", {"decode.steps": GEN}),
    ("margin", {"decode.steps": 16}),
    ("entropy", {"decode.steps": 16}),
    ("klass", {"decode.steps": GEN, "sampler.conf_threshold": 0.9, "sampler.kl_threshold": 0.005}),
    ("klass", {"decode.steps": GEN, "sampler.conf_threshold": 0.8, "sampler.kl_threshold": 0.01}),
    ("klass", {"decode.steps": GEN, "sampler.conf_threshold": 0.6, "sampler.kl_threshold": 0.05}),
    ("klass", {"decode.steps": 16, "sampler.conf_threshold": 0.8, "sampler.kl_threshold": 0.01}),
    ("med", {"decode.steps": GEN, "sampler.entropy_threshold": 0.3}),
    ("med", {"decode.steps": GEN, "sampler.entropy_threshold": 1.0}),
    ("ar_med", {"decode.steps": GEN, "sampler.entropy_threshold": 0.5}),
    ("eb", {"decode.steps": GEN, "sampler.gamma": 0.1}),
    ("eb", {"decode.steps": GEN, "sampler.gamma": 1.0}),
    ("threshold", {"decode.steps": GEN, "sampler.threshold": 0.9}),
    ("threshold", {"decode.steps": GEN, "sampler.threshold": 0.7}),
]

KEYS = ("fd_glyph", "accuracy", "is_glyph", "pixel_diversity")


def full_grid(rules: set[str] | None) -> list[tuple[str, dict]]:
    """GRID plus, for every registered rule it lacks, one setting with the rule's defaults at one token per step."""
    grid = GRID + [(r, {"decode.steps": GEN}) for r in mdsample.available_samplers() if r not in {g for g, _ in GRID}]
    return [(rule, overrides) for rule, overrides in grid if rules is None or rule in rules]


def run_setting(rule: str, overrides: dict, args: argparse.Namespace, index: int) -> dict:
    start = time.perf_counter()
    extra = dict(kv.split("=", 1) for kv in args.set)
    if args.model:
        extra["domain.model"] = args.model
    result = mdsample.sample(
        "image", rule, args.n, seed=args.seed, device=args.device, batch_size=args.batch_size, progress=False,
        out=str(Path(args.runs) / f"{index:02d}-{rule}"),
        **{"domain.guidance": args.guidance, **extra, **overrides},
    )
    return setting_row(rule, overrides, args.n, result, time.perf_counter() - start, KEYS, guidance=args.guidance)


def plot(rows: list[dict], path: Path) -> None:
    plot_quality_vs_nfe(rows, path, "mean NFE per image", [("fd_glyph", "FD-glyph (lower is better)"),
                                                           ("accuracy", "classifier accuracy on the requested class")],
                        xscale="log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="images per setting (classes round-robin)")
    parser.add_argument("--model", default=None, help="glyph model directory (default: the shipped one)")
    parser.add_argument("--guidance", type=float, default=0.0, help="domain.guidance (classifier-free guidance w)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/image_samplers")
    parser.add_argument("--rules", default=None, help="comma list to restrict the grid")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every setting, e.g. decode.temperature=0.8")
    parser.add_argument("--out", default="benchmarks/results/image_samplers.json", help="JSON file to write")
    parser.add_argument("--plot", default="benchmarks/results/image_samplers.png", help="PNG file to write")
    args = parser.parse_args()
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (rule, overrides) in enumerate(full_grid(set(args.rules.split(",")) if args.rules else None)):
        row = run_setting(rule, overrides, args, index)
        rows.append(row)
        print(json.dumps(row), flush=True)
        report = {"benchmark": "image_samplers", "model": args.model or "(shipped)", "n": args.n, "set": args.set,
                  "guidance": args.guidance, "device": args.device, "version": mdsample.__version__, "rows": rows}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    if args.plot and rows:
        plot(rows, Path(args.plot))


if __name__ == "__main__":
    main()
