"""The ``mdsample posterior`` command line: its arguments and input checks, without torch (posterior.py runs it).

Usage and config errors are answered before the text domain, torch or transformers are imported.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mdsample.config import check_out_dir, resolve_config
from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.text.options import TEMPLATE_TASKS

HELP = "sample reasoning traces given known answers (posterior sampling) and score them for fine-tuning"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", default="text", help="text (the only domain with answer templates)")
    parser.add_argument("--task", default="arithmetic", help="domain.task with reasoning slots: arithmetic, chain")
    parser.add_argument("--sampler", help="selection rule that fills the reasoning (default: klass)")
    parser.add_argument("--model", help="domain.model: house text model directory (default: the shipped one)")
    parser.add_argument("-n", type=int, default=1000, help="number of (context, answer) pairs")
    parser.add_argument("--data", help="jsonl of {prompt, answer} pairs (default: the task's train split)")
    parser.add_argument("--out", required=True, help="output jsonl of traces")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument("--device", help="auto (default), cpu, cuda")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. decode.temperature=1")


def run(args: argparse.Namespace) -> int:
    if args.domain != "text":
        raise ConfigError(f"posterior sampling needs answer templates (text domain), not domain {args.domain!r}")
    flags = {"n": args.n, "seed": args.seed, "device": args.device, "domain.task": args.task,
             "domain.model": args.model}
    cfg = resolve_config("text", args.sampler, flags=flags, dotlist=args.overrides)
    if cfg.domain.task not in TEMPLATE_TASKS:
        raise ConfigError(f"task {cfg.domain.task!r} has no reasoning slots to sample; use --task one of "
                          f"{', '.join(TEMPLATE_TASKS)}")
    if args.data and not Path(args.data).is_file():
        raise MissingFileError(f"--data {args.data!r} does not exist; give a jsonl of {{prompt, answer}} pairs")
    check_out_dir(str(Path(args.out).parent), "--out's directory")
    if Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out!r} is a directory; give the path of the jsonl file to write")
    from mdsample.plugins.text.posterior import sample_posterior

    return sample_posterior(args, cfg)
