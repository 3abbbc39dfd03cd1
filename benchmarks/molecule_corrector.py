"""Does a remasking corrector lift validity without the FCD cost of a lower temperature? (Issue 15 probe.)

Lowering the temperature or the nucleus buys validity on the molecule models and loses FCD fast, since it shrinks
the distribution. A corrector (``mdsample.core.corrector``) keeps sampling at the model's temperature: after the
canvas is full it re-masks ``k`` random non-frozen positions of every row and redraws them from the model given
everything else, ``steps`` times (ReMDM's loop phase with random remasking; a blocked Gibbs sweep). A ring closure
or a parenthesis without its partner is unlikely under the model once both sides are visible, so redrawing tends
to repair it. This probe reads the canvases out after 0, 10, 25, 50 and 100 steps.

    python benchmarks/molecule_corrector.py generate --model DIR --out corrector.json.gz   (GPU)
    python benchmarks/molecule_corrector.py score corrector.json.gz --out results.json     (CPU: valid, FCD/Test)
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import torch

CHECKPOINTS = (0, 10, 25, 50, 100)
"""Corrector steps after which the canvases are read out."""
BASES = {
    "confidence_t1": ("confidence", {"decode.steps": 55, "decode.temperature": 1.0}),
    "klass_t1_p95": ("klass", {"decode.temperature": 1.0, "decode.top_p": 0.95}),
}
CORRECTORS = ((2, 1.0), (6, 1.0), (2, 0.8))
"""(positions re-masked per row and step, temperature of the redraw)."""


def generate(args: argparse.Namespace) -> None:
    from mdsample import plugin_manager
    from mdsample.api import resolve_device
    from mdsample.config import options_of, resolve_config
    from mdsample.core import BlockSchedule, Corrector, TokenChooser, correct, decode

    domain = plugin_manager.load_domain("molecule")
    device = resolve_device(args.device)
    runs, denoiser = [], None
    for base, (rule_name, overrides) in BASES.items():
        cfg = resolve_config("molecule", rule_name, flags={"domain.representation": args.representation,
                                                           "domain.model": args.model, **overrides})
        options = domain.Options(**options_of(cfg.domain))
        denoiser = denoiser or domain.load_denoiser(options, device)
        rule_cls = plugin_manager.get_rule(rule_name)
        for k, temperature in CORRECTORS:
            generator = torch.Generator(device=device).manual_seed(args.seed)
            initial = domain.initial_state(denoiser, options, args.n, device)
            start = time.perf_counter()
            result = decode(denoiser, initial.state, rule_cls(rule_cls.Config(**options_of(cfg.sampler))),
                            schedule=BlockSchedule(cfg.decode.steps, cfg.decode.block_length),
                            chooser=TokenChooser(cfg.decode.temperature, cfg.decode.top_k, cfg.decode.top_p),
                            generator=generator, confidence=cfg.decode.confidence)
            redraw, nfe_decode = TokenChooser(temperature), result.nfe.float().mean().item()
            read = {0: domain.decode(result.tokens, initial)}
            for before, step in zip(CHECKPOINTS, CHECKPOINTS[1:]):
                correct(denoiser, result, Corrector(step - before, k), redraw, generator=generator)
                read[step] = domain.decode(result.tokens, initial)
            runs.append({"base": base, "rule": rule_name, "settings": overrides, "k": k, "temperature": temperature,
                         "nfe_decode": nfe_decode, "seconds": time.perf_counter() - start,
                         "samples": {str(s): v for s, v in read.items()}})
            print(f"{base} k={k} T={temperature}: {runs[-1]['seconds']:.1f} s", flush=True)
            with gzip.open(args.out, "wt") as f:
                json.dump({"representation": args.representation, "model": str(args.model), "n": args.n,
                           "runs": runs}, f)


def score(args: argparse.Namespace) -> None:
    from mdsample.plugins.molecule.chem import canonical
    from mdsample.plugins.molecule.metrics.fcd import fcd_to_all

    with gzip.open(args.samples, "rt") as f:
        report = json.load(f)
    rows = []
    for run in report.pop("runs"):
        for step, samples in run.pop("samples").items():
            canonical_smiles = [canonical(s) for s in samples]
            valid = [c for c in canonical_smiles if c]
            row = run | {"corrector_steps": int(step), "valid": len(valid) / len(samples),
                         "unique": len(set(valid)) / max(len(valid), 1),
                         "FCD/Test": fcd_to_all(valid, ("test",))["test"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            Path(args.out).write_text(json.dumps(report | {"rows": rows}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--representation", default="smiles", choices=["smiles", "selfies"])
    gen.add_argument("--model", default=None)
    gen.add_argument("--n", type=int, default=5000)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--device", default="auto")
    gen.add_argument("--out", required=True)
    sc = sub.add_parser("score")
    sc.add_argument("samples")
    sc.add_argument("--out", required=True)
    args = parser.parse_args()
    {"generate": generate, "score": score}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
