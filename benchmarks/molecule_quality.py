"""MOSES quality vs NFE of every selection rule on the shipped molecule models, in two phases.

``generate`` (GPU; needs no RDKit): for each setting of the grid, decode ``--n`` molecules with the domain's
defaults plus the setting's overrides (the same resolved config ``mdsample`` uses), and write the raw strings, NFE
per molecule and decode seconds into one ``.json.gz`` per representation, with the model's sha256, the temperature
and the confidence mode of every setting. ``score`` (CPU): MOSES metrics of every setting (``metrics.compute``, the
full test and scaffold-test references) into ``benchmarks/results/*.json``. ``table``: the markdown table.

    python benchmarks/molecule_quality.py generate --representation smiles --n 10000 --out samples_smiles.json.gz
    python benchmarks/molecule_quality.py score samples_smiles.json.gz --out results/molecule_quality_smiles.json
    python benchmarks/molecule_quality.py table results/molecule_quality_*.json

Why two phases: the device image has no RDKit and the scoring of 10,000 molecules is CPU work (ChemNet runs on the
CPU at ~650 molecules/s; SNN against 176k fingerprints is one matrix product).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from pathlib import Path

import torch

GEN = 55
"""Generation slots of the molecule canvas (56 minus the frozen BOS): ``steps=55`` is one token per step."""

GRID: list[tuple[str, dict]] = [
    ("klass", {}),
    ("klass", {"decode.correct_steps": 0}),
    ("klass", {"decode.correct_steps": 25}),
    ("klass", {"decode.correct_steps": 100}),
    ("confidence", {"decode.steps": GEN}),
    ("confidence", {"decode.steps": GEN, "decode.correct_steps": 0}),
    ("confidence", {"decode.steps": 28}),
    ("random", {"decode.steps": GEN}),
    ("margin", {"decode.steps": GEN}),
    ("entropy", {"decode.steps": GEN}),
    ("maskgit", {"decode.steps": 14}),
    ("klass", {"sampler.conf_threshold": 0.8, "sampler.kl_threshold": 0.01}),
    ("klass", {"sampler.conf_threshold": 0.7, "sampler.kl_threshold": 0.02}),
    ("med", {"sampler.entropy_threshold": 0.1}),
    ("med", {"sampler.entropy_threshold": 0.3}),
    ("ar_med", {"sampler.entropy_threshold": 0.3}),
    ("ar_med", {"sampler.entropy_threshold": 0.5}),
    ("eb", {"sampler.gamma": 0.1}),
    ("eb", {"sampler.gamma": 0.5}),
    ("threshold", {"sampler.threshold": 0.9}),
    ("threshold", {"sampler.threshold": 0.7}),
    ("klass", {"decode.temperature": 0.8}),
    ("confidence", {"decode.steps": GEN, "decode.temperature": 0.8, "decode.correct_steps": 0}),
    ("klass", {"decode.top_p": 0.95}),
]
"""Every rule at the domain's defaults (corrector included), KLASS with 0, 25 and 100 corrector steps, the
one-token-per-step baseline without the corrector, and the former default (T 0.8, no corrector) for reference."""


CORRECTOR_KEYS = ("decode.correct_steps", "decode.correct_positions", "decode.correct_pick")
"""Shown in the table's corrector column ("steps x positions", "conf" for the confidence pick), not under settings."""


def parse_setting(text: str) -> tuple[str, dict]:
    """``RULE:key=value,key=value`` (values read as JSON where they parse, else kept as strings)."""
    rule, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return rule, overrides


def generate(args: argparse.Namespace) -> None:
    from mdsample import plugin_manager
    from mdsample.api import Decoder, batch_seed, resolve_device
    from mdsample.config import options_of, resolve_config

    domain = plugin_manager.load_domain("molecule")
    device = resolve_device(args.device)
    settings = []
    denoiser = None
    settings_grid = [parse_setting(t) for t in args.setting] if args.setting else GRID
    shard, shards = (int(x) for x in args.shard.split("/"))
    for index, (rule_name, overrides) in enumerate(settings_grid):
        if args.rules and rule_name not in args.rules.split(",") or index % shards != shard:
            continue
        cfg = resolve_config("molecule", rule_name, flags={"n": args.n, "domain.representation": args.representation,
                                                           "domain.model": args.model, **overrides})
        options = domain.Options(**options_of(cfg.domain))
        if denoiser is None:
            denoiser = domain.load_denoiser(options, device)
        decoder = Decoder.from_config(cfg)
        strings, nfe, seconds = [], [], 0.0
        for b in range(math.ceil(args.n / args.batch_size)):
            size = min(args.batch_size, args.n - b * args.batch_size)
            initial = domain.initial_state(denoiser, options, size, device, offset=b * args.batch_size)
            generator = torch.Generator(device=device).manual_seed(batch_seed(args.seed, b))
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            result = decoder(denoiser, initial.state, initial.conditioning, generator)
            seconds += time.perf_counter() - start
            strings += domain.decode(result.tokens, initial)
            nfe += result.nfe.cpu().tolist()
        setting = {"rule": rule_name, "settings": overrides, "sampler": options_of(cfg.sampler),
                   "temperature": cfg.decode.temperature, "top_p": cfg.decode.top_p,
                   "confidence": cfg.decode.confidence, "correct_steps": cfg.decode.correct_steps,
                   "correct_positions": cfg.decode.correct_positions, "correct_pick": cfg.decode.correct_pick,
                   "steps": cfg.decode.steps, "n": args.n, "nfe_mean": sum(nfe) / len(nfe),
                   "decode_s": seconds, "nfe": nfe, "samples": strings}
        settings.append(setting)
        print(f"{rule_name} {overrides}: nfe {setting['nfe_mean']:.1f}, {seconds:.1f} s", flush=True)
        _write(args, device, settings)


def _write(args: argparse.Namespace, device: torch.device, settings: list[dict]) -> None:
    """The report so far (rewritten after every setting, so a call cut short keeps what it decoded)."""
    from mdsample.models.house import sha256_file
    from mdsample.plugins.molecule.domain import WEIGHTS_DIR

    weights = Path(args.model or WEIGHTS_DIR / args.representation) / "model.safetensors"
    report = {"representation": args.representation, "model": str(args.model or "shipped"),
              "model_sha256": sha256_file(weights), "device": torch.cuda.get_device_name(device)
              if device.type == "cuda" else "cpu", "seed": args.seed, "batch_size": args.batch_size,
              "settings": settings}
    with gzip.open(args.out, "wt") as f:
        json.dump(report, f)


def score(args: argparse.Namespace) -> None:
    from mdsample.plugins.molecule.metrics import compute

    with gzip.open(args.samples, "rt") as f:
        report = json.load(f)
    rows = []
    settings = report.pop("settings")
    full = list(range(len(settings))) if args.full is None else [int(i) for i in args.full.split(",") if i]
    light = [int(i) for i in args.light.split(",") if i] if args.light else []
    for index in full + light:
        setting = dict(settings[index])
        start = time.perf_counter()
        metrics = compute(setting.pop("samples"), **({} if index in full else LIGHT))
        nfe = setting.pop("nfe")
        rows.append(setting | {"index": index, "scored": "full" if index in full else "light",
                               "nfe_p90": sorted(nfe)[int(0.9 * (len(nfe) - 1))], "metrics": metrics,
                               "score_s": time.perf_counter() - start})
        print(json.dumps(rows[-1]), flush=True)
        Path(args.out).write_text(json.dumps(report | {"rows": rows}, indent=2))


LIGHT = {"sets": ("test",), "with_filters": False}
"""What a light score leaves out: the TestSF set and the 502 filter SMARTS (the costliest parts on a CPU)."""

COLUMNS = ("valid", "unique@10000", "Novelty", "FCD/Test", "FCD/TestSF", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv",
           "Filters")


def table(args: argparse.Namespace) -> None:
    if args.plot:
        plot(args.results, Path(args.plot))
    print("| repr | rule | settings | T | corrector | NFE | " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * (6 + len(COLUMNS)))
    for path in args.results:
        report = json.loads(Path(path).read_text())
        for row in report["rows"]:
            settings = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in row["settings"].items()
                                 if k not in ("decode.temperature", *CORRECTOR_KEYS))
            values = " | ".join(_fmt(row["metrics"].get(c)) for c in COLUMNS)
            corrector = (f"{row['correct_steps']} x {row['correct_positions']}"
                         f"{' conf' if row.get('correct_pick') == 'confidence' else ''}" if row.get("correct_steps")
                         else "-")
            print(f"| {report['representation']} | {row['rule']} | {settings} | {row['temperature']} | {corrector} | "
                  f"{row['nfe_mean']:.1f} | {values} |")


def plot(results: list[str], path: Path) -> None:
    """Validity and FCD/Test against mean NFE, one line per representation, rule and corrector kind (settings at the
    default temperature; the corrector's positions per step and pick are part of the line's name, so a line joins
    settings that differ only in their budget)."""
    from sweep import plot_quality_vs_nfe

    rows = []
    for result in results:
        report = json.loads(Path(result).read_text())
        rows += [{"rule": f"{report['representation']} {row['rule']}" + _corrector_label(row),
                  "nfe_mean": row["nfe_mean"],
                  "valid": row["metrics"]["valid"], "fcd": row["metrics"]["FCD/Test"]}
                 for row in report["rows"] if "decode.temperature" not in row["settings"]]
    panels = [("valid", "validity"), ("fcd", "FCD/Test (lower is better)")]
    plot_quality_vs_nfe(rows, path, "mean NFE per molecule", panels)


def _corrector_label(row: dict) -> str:
    """" + corrector x6" (random picks of 6 positions), " + corrector x12 conf", or "" without a corrector."""
    if not row.get("correct_steps"):
        return ""
    pick = " conf" if row.get("correct_pick") == "confidence" else ""
    return f" + corrector x{row['correct_positions']}{pick}"


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--representation", default="smiles", choices=["smiles", "selfies"])
    gen.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    gen.add_argument("--n", type=int, default=10000)
    gen.add_argument("--batch-size", type=int, default=10000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--device", default="auto")
    gen.add_argument("--rules", default=None, help="comma list to restrict the grid")
    gen.add_argument("--shard", default="0/1", help="I/N: decode only settings I, I+N, ... (parallel processes)")
    gen.add_argument("--setting", action="append", default=[],
                     help="RULE:key=value,... instead of the grid (repeatable), e.g. confidence:decode.top_p=0.9")
    gen.add_argument("--out", required=True)
    sc = sub.add_parser("score")
    sc.add_argument("samples")
    sc.add_argument("--out", required=True)
    sc.add_argument("--full", default=None, help="setting indices to score fully, in order (default: all)")
    sc.add_argument("--light", default=None, help="then these, without TestSF and Filters (ranking sweeps)")
    tb = sub.add_parser("table")
    tb.add_argument("results", nargs="+")
    tb.add_argument("--plot", default=None, help="also draw validity and FCD vs NFE into this PNG")
    args = parser.parse_args()
    {"generate": generate, "score": score, "table": table}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
