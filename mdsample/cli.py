"""The ``mdsample`` command.

Generation is the default command (``mdsample --domain molecule --sampler klass``), so a first argument that is not
an option and not a ``key=value`` override names a subcommand: ``list``, ``train`` or one a plugin registered
through ``register_commands``. Every MdsampleError becomes ``error: <message>`` on one line and exit code 2 (the
traceback only with --debug); Ctrl-C exits 130 after the run has kept its finished batches.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from mdsample import __version__, plugin_manager
from mdsample.errors import MdsampleError, UnknownChoiceError

BUILTIN_COMMANDS = {
    "list": "show the registered domains, samplers, commands and plugins (and plugins that failed to load)",
    "train": "train a domain's house denoiser with the MDLM objective (train.KEY=VALUE overrides)",
    "study": "run a study (domains x tasks x samplers x grids x seeds), resumable, shardable with torchrun",
    "report": "table, Markdown report and Pareto plots (quality vs NFE / seconds) of a study's results",
}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. decode.steps=32")


def generation_parser() -> argparse.ArgumentParser:
    commands = ", ".join([*BUILTIN_COMMANDS, *sorted(plugin_manager.commands())])
    parser = argparse.ArgumentParser(
        prog="mdsample",
        description="Sample from a masked diffusion model: mdsample --domain D --sampler S [KEY=VALUE ...]",
        epilog=f"other commands (mdsample COMMAND --help): {commands}",
    )
    parser.add_argument("--version", action="version", version=f"mdsample {__version__}")
    parser.add_argument("--domain", help="domain to sample (see `mdsample list`; default: molecule)")
    parser.add_argument("--sampler", help="selection rule (see `mdsample list`; default: klass)")
    parser.add_argument("-n", type=int, help="number of samples (default: 64 or the domain's)")
    parser.add_argument("--steps", type=int, help="decode.steps: denoiser steps in total (default: generation length)")
    parser.add_argument("--block-length", type=int, help="decode.block_length: semi-autoregressive block size")
    parser.add_argument("--temperature", type=float, help="decode.temperature (0: argmax)")
    parser.add_argument("--seed", type=int, help="random seed (same seed, device and batch: same tokens)")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--out", help="run directory (default: runs/<domain>-<sampler>-<time>)")
    parser.add_argument("--config", help="YAML config file merged under the flags and overrides")
    parser.add_argument("--prompt", help="domain.prompt: conditioning / infill template (domain syntax)")
    parser.add_argument("--model", help="domain.model: hub id or local path (default: the shipped house model)")
    parser.add_argument("--task", help="domain.task: one of the domain's tasks")
    parser.add_argument("--class", dest="label", help="domain.label: the class of a class-conditional domain")
    parser.add_argument("--early-exit", type=float, metavar="GAMMA",
                        help="decode.early_exit: stop reasoning once the answer slots' entropy bound < GAMMA")
    parser.add_argument("--trace", action="store_true", help="save the decode trace of the first rows (trace.pt)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_common(parser)
    _add_overrides(parser)
    return parser


def run_generation(args: argparse.Namespace, session: argparse.Namespace) -> int:
    from mdsample.api import run
    from mdsample.config import resolve_config

    flags = {
        "n": args.n,
        "seed": args.seed,
        "device": args.device,
        "out": args.out,
        "decode.steps": args.steps,
        "decode.block_length": args.block_length,
        "decode.temperature": args.temperature,
        "domain.prompt": args.prompt,
        "domain.model": args.model,
        "domain.task": args.task,
        "domain.label": args.label,
        "decode.early_exit": args.early_exit,
        "trace": True if args.trace else None,
        "progress": False if args.no_progress else None,
        "debug": True if args.debug else None,
    }
    cfg = resolve_config(args.domain, args.sampler, config_file=args.config, flags=flags, dotlist=args.overrides)
    session.debug = cfg.debug  # `debug: true` in a config file shows tracebacks too
    run(cfg)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()

    def table(title: str, columns: list[str], rows: list[tuple[str, ...]]) -> None:
        t = Table(title=title)
        for column in columns:
            t.add_column(column)
        for row in rows:
            t.add_row(*row)
        console.print(t if rows else f"{title}: (none)")

    def doc(obj: object) -> str:
        return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""

    problems = plugin_manager.problems()
    table("Domains", ["domain", "description", "plugin"],
          [(name, d.description, p) for name, (d, p) in sorted(plugin_manager.domains().items())])
    table("Samplers", ["sampler", "description", "plugin"],
          [(name, doc(r), p) for name, (r, p) in sorted(plugin_manager.samplers().items())])
    table("Commands", ["command", "help", "plugin"],
          [(n, h, "(built-in)") for n, h in BUILTIN_COMMANDS.items()]
          + [(n, c.help, p) for n, (c, p) in sorted(plugin_manager.commands().items())])
    table("Plugins", ["plugin", "status"], [(name, "loaded") for name in plugin_manager.loaded_plugins()]
          + sorted({(p.plugin, "failed") for p in problems if p.fatal}))
    table("Plugin problems", ["plugin", "error"], [(p.plugin, p.error) for p in problems])
    return 0


def run_train(args: argparse.Namespace) -> int:
    from mdsample.config import options_of, resolve_train_config, save_config
    from mdsample.train import TrainConfig

    flags = {"out": args.out, "debug": True if args.debug else None, "domain.task": args.task,
             "train.init": args.init, "domain.data": args.data}
    cfg = resolve_train_config(args.domain, TrainConfig, config_file=args.config, flags=flags, dotlist=args.overrides)
    domain = plugin_manager.load_domain(cfg.domain.name)
    out = Path(cfg.out or Path("runs") / f"{domain.name}-train-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    cfg.out = str(out)
    save_config(cfg, out / "train_config.yaml")
    options = domain.Options(**options_of(cfg.domain))
    command = shlex.join(["mdsample", *args.argv])
    path = domain.train_house(options, TrainConfig(**options_of(cfg.train)), out, command=command)
    print(f"model saved to {path}")
    return 0


def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", help="domain whose house model to train (default: molecule)")
    parser.add_argument("--out", help="output directory (default: runs/<domain>-train-<time>)")
    parser.add_argument("--task", help="domain.task: the task whose house model to train (domains with tasks)")
    parser.add_argument("--init", help="train.init: continue from this house checkpoint (fine-tuning)")
    parser.add_argument("--data", help="domain.data: a training file the domain understands (text: posterior traces)")
    parser.add_argument("--config", help="YAML file with `train:` and `domain:` sections")
    _add_overrides(parser)


Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _subcommand(word: str) -> tuple[Configure, Run, str]:
    """(configure, run, help) of the subcommand ``word``: built-in first, then those plugins registered."""
    if word == "list":
        return (lambda parser: None), run_list, BUILTIN_COMMANDS["list"]
    if word == "train":
        return configure_train, run_train, BUILTIN_COMMANDS["train"]
    if word in ("study", "report"):
        from mdsample.study import command

        if word == "study":
            return command.configure_study, command.run_study_command, BUILTIN_COMMANDS["study"]
        return command.configure_report, command.run_report_command, BUILTIN_COMMANDS["report"]
    registered = plugin_manager.commands()
    if word not in registered:
        raise UnknownChoiceError("command", word, [*BUILTIN_COMMANDS, *registered])
    command = registered[word][0]
    return command.configure, command.run, command.help


def dispatch(argv: list[str], session: argparse.Namespace) -> int:
    word = argv[0] if argv and not argv[0].startswith("-") and "=" not in argv[0] else None
    if word is None:
        return run_generation(generation_parser().parse_intermixed_args(argv), session)
    configure, run, help_text = _subcommand(word)
    parser = argparse.ArgumentParser(prog=f"mdsample {word}", description=help_text)
    _add_common(parser)
    configure(parser)
    args = parser.parse_intermixed_args(argv[1:])
    args.argv = argv
    return int(run(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    session = argparse.Namespace(debug="--debug" in argv)
    try:
        return dispatch(argv, session)
    except MdsampleError as exc:
        if session.debug:
            traceback.print_exc()
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
