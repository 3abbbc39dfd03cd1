"""Quality vs NFE of every selection rule on the shipped molecule models (GPU or CPU).

For each setting of the grid: sample ``--n`` molecules with ``mdsample.sample`` (same seed for all), and record
validity, uniqueness, novelty, FCD, IntDiv, mean NFE per molecule and wall-clock per 1,000 molecules. Writes
JSON (one object per setting) and, with ``--plot``, a validity/FCD vs NFE figure.
CPU: ``python benchmarks/molecule_samplers.py --n 500``; GPU: ``--n 2000 --device cuda``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sweep import plot_quality_vs_nfe, setting_row

import mdsample

GEN = 55
"""Generation slots of the molecule canvas (56 minus the frozen BOS): ``steps=55`` is one token per step."""

GRID: list[tuple[str, dict]] = [
    ("confidence", {"decode.steps": GEN}),
    ("confidence", {"decode.steps": 28}),
    ("confidence", {"decode.steps": 14}),
    ("random", {"decode.steps": GEN}),
    ("random", {"decode.steps": 14}),
    ("margin", {"decode.steps": GEN}),
    ("entropy", {"decode.steps": GEN}),
    ("maskgit", {"decode.steps": 14}),
    ("klass", {"sampler.conf_threshold": 0.9, "sampler.kl_threshold": 0.005}),
    ("klass", {"sampler.conf_threshold": 0.8, "sampler.kl_threshold": 0.01}),
    ("klass", {"sampler.conf_threshold": 0.7, "sampler.kl_threshold": 0.02}),
    ("klass", {"sampler.conf_threshold": 0.6, "sampler.kl_threshold": 0.05}),
    ("med", {"sampler.entropy_threshold": 0.3}),
    ("med", {"sampler.entropy_threshold": 0.6}),
    ("ar_med", {"sampler.entropy_threshold": 0.3}),
    ("eb", {"sampler.gamma": 0.1}),
    ("eb", {"sampler.gamma": 0.5}),
    ("threshold", {"sampler.threshold": 0.9}),
    ("threshold", {"sampler.threshold": 0.7}),
]

KEYS = ("validity", "unique", "novelty", "fcd", "intdiv", "snn")


def run_setting(rule: str, overrides: dict, args) -> dict:
    start = time.perf_counter()
    result = mdsample.sample(
        "molecule", rule, args.n, seed=args.seed, device=args.device, batch_size=args.batch_size, progress=False,
        out=str(Path(args.runs) / f"{rule}-{len(list(Path(args.runs).glob(rule + '-*')))}"),
        **{"domain.representation": args.representation, **dict(kv.split("=", 1) for kv in args.set), **overrides},
    )
    return setting_row(rule, overrides, args.n, result, time.perf_counter() - start, KEYS)


def plot(rows: list[dict], path: Path) -> None:
    plot_quality_vs_nfe(rows, path, "mean NFE per molecule",
                        [("validity", "validity"), ("fcd", "FCD (lower is better)")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--representation", default="smiles", choices=["smiles", "selfies"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/molecule_samplers")
    parser.add_argument("--rules", default=None, help="comma list to restrict the grid")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="config overrides for every setting, e.g. decode.confidence=mode")
    parser.add_argument("--out", default=None, help="JSON file to write")
    parser.add_argument("--plot", default=None, help="PNG file to write")
    args = parser.parse_args()
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    wanted = set(args.rules.split(",")) if args.rules else None
    rows = []
    for rule, overrides in GRID:
        if wanted and rule not in wanted:
            continue
        row = run_setting(rule, overrides, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
        report = {"benchmark": "molecule_samplers", "representation": args.representation, "n": args.n, "set": args.set,
                  "device": args.device, "version": mdsample.__version__, "rows": rows}
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))
    if args.plot:
        plot(rows, Path(args.plot))


if __name__ == "__main__":
    main()
