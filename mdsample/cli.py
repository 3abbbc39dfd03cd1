"""The ``mdsample`` command.

Generation is the default command (``mdsample --domain molecule --sampler klass``), so a first argument that is not
an option and not a ``key=value`` override names a subcommand: ``list``, ``train`` or one a plugin registered
through ``register_commands``.

Every input ends in exit code 0, 2 or 130. A command line that does not parse, an MdsampleError, or a file-system
error becomes ``error: <message>`` on one line (what is wrong and, where there are some, the valid choices) plus at
most one ``try: ...`` line, with exit code 2; the traceback only with --debug. Ctrl-C exits 130 after the run has
kept its finished batches. The command answers its usage and config errors before torch or any domain library is
imported: configs are checked against the plugins' descriptions (mdsample.describe), and the heavy modules are
imported only to run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from mdsample import __version__, plugin_manager
from mdsample.describe import resolve
from mdsample.errors import MdsampleError, MissingFileError, PluginError, UnknownChoiceError, UsageError

BUILTIN_COMMANDS = {
    "list": "show the registered domains, samplers, commands and plugins (and plugins that failed to load)",
    "train": "train a domain's house denoiser with the MDLM objective (train.KEY=VALUE overrides)",
    "study": "run a study (domains x tasks x samplers x grids x seeds), resumable, shardable with torchrun",
    "report": "table, Markdown report and Pareto plots (quality vs NFE / seconds) of a study's results",
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line UsageErrors (argparse would print its whole usage first)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        if "unrecognized arguments" in text or "ambiguous option" in text:
            text += f"; valid options of {self.prog}: {', '.join(self._valid_options())}"
        raise UsageError(f"{self.prog}: {text}", hint=f"try: {self.prog} --help")

    def _valid_options(self) -> list[str]:
        return sorted({o for a in self._actions for o in a.option_strings if o.startswith("--")})


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. decode.steps=32")


def generation_parser() -> argparse.ArgumentParser:
    commands = ", ".join([*BUILTIN_COMMANDS, *sorted(plugin_manager.commands())])
    parser = Parser(
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
    from mdsample.config import check_device, check_out_dir, resolve_config

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
    check_device(cfg.device)
    check_out_dir(cfg.out, "--out")
    from mdsample.api import run  # torch and the domain's libraries: only once the input is known to be good

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

    problems = plugin_manager.problems()
    table("Domains", ["domain", "description", "plugin"],
          [(name, d.description, p) for name, (d, p) in sorted(plugin_manager.domains().items())])
    table("Samplers", ["sampler", "description", "plugin"],
          [(name, r.description, p) for name, (r, p) in sorted(plugin_manager.samplers().items())])
    table("Commands", ["command", "help", "plugin"],
          [(n, h, "(built-in)") for n, h in BUILTIN_COMMANDS.items()]
          + [(n, c.help, p) for n, (c, p) in sorted(plugin_manager.commands().items())])
    table("Plugins", ["plugin", "status"], [(name, "loaded") for name in plugin_manager.loaded_plugins()]
          + sorted({(p.plugin, "failed") for p in problems if p.fatal}))
    table("Plugin problems", ["plugin", "error"], [(p.plugin, p.error) for p in problems])
    return 0


def run_train(args: argparse.Namespace) -> int:
    from mdsample.config import check_out_dir, load_yaml, options_of, resolve_train_config, save_config
    from mdsample.train_config import TrainConfig

    flags = {"out": args.out, "debug": True if args.debug else None, "domain.task": args.task,
             "train.init": args.init, "domain.data": args.data}
    config_file = args.config
    if args.resume is not None:
        given = [f"--{k}" for k in ("domain", "out", "task", "init", "data", "config") if getattr(args, k) is not None]
        if given or args.overrides:
            raise UsageError(f"mdsample train --resume continues with the run's saved config; drop "
                             f"{', '.join(given + args.overrides)}", hint="try: mdsample train --resume RUN_DIR")
        config_file = Path(args.resume) / "train_config.yaml"
        if not config_file.is_file():
            raise MissingFileError(f"--resume {args.resume!r}: no train_config.yaml there; give the directory of a "
                                   "run started with `mdsample train`")
        load_yaml(config_file)  # a corrupt saved config is named before anything else happens
        flags = {"out": str(args.resume), "train.resume": True, "debug": True if args.debug else None}
    cfg = resolve_train_config(args.domain, TrainConfig, config_file=config_file, flags=flags,
                               dotlist=args.overrides)
    out = Path(cfg.out or Path("runs") / f"{cfg.domain.name}-train-{time.strftime('%Y%m%d-%H%M%S')}")
    check_out_dir(str(out), "--out")
    domain = plugin_manager.load_domain(cfg.domain.name)
    out.mkdir(parents=True, exist_ok=True)
    cfg.out = str(out)
    if args.resume is None:
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
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last checkpoint, with its saved config")
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
    command, plugin = registered[word]
    try:  # a plugin may name its functions as "module:attribute", imported only now
        return resolve(command.configure), resolve(command.run), command.help
    except (Exception, SystemExit) as exc:
        raise PluginError(f"plugin {plugin!r} could not load command {word!r}: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())}") from exc


def dispatch(argv: list[str], session: argparse.Namespace) -> int:
    word = argv[0] if argv and not argv[0].startswith("-") and "=" not in argv[0] else None
    if word is None:
        return run_generation(generation_parser().parse_intermixed_args(argv), session)
    configure, run, help_text = _subcommand(word)
    parser = Parser(prog=f"mdsample {word}", description=help_text)
    _add_common(parser)
    configure(parser)
    args = parser.parse_intermixed_args(argv[1:])
    args.argv = argv
    code = int(run(args) or 0)
    if code not in (0, 2, 130):  # a plugin command's own failure code: still one of the three, with a line
        raise PluginError(f"mdsample {word} failed (it returned exit code {code})")
    return code


def _report(message: str, hint: str | None) -> None:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    if hint:
        print(hint, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (0, 2 or 130)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    session = argparse.Namespace(debug="--debug" in argv)
    try:
        return dispatch(argv, session)
    except SystemExit as exc:  # --help and --version exit 0; a plugin command that exits non-zero is an error
        if exc.code in (0, None):
            return 0
        _report(f"{' '.join(argv[:1]) or 'mdsample'} exited with {exc.code}", None)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MdsampleError as exc:
        if session.debug:
            traceback.print_exc()
        _report(str(exc), exc.hint)
        return 2
    except OSError as exc:  # the file system refused: a path the user gave (or its disk) is the problem
        if session.debug:
            traceback.print_exc()
        where = f": {exc.filename!r}" if exc.filename else ""
        _report(f"{exc.strerror or type(exc).__name__}{where}",
                "try: a path you can write to (--out) or read (--config, --model)")
        return 2
    except Exception as exc:  # a bug: one line, and how to see the traceback
        if session.debug:
            traceback.print_exc()
        _report(f"unexpected {type(exc).__name__}: {exc}", "try: --debug for the traceback (this is a bug in "
                "mdsample: please report it)")
        return 2


if __name__ == "__main__":
    sys.exit(main())
