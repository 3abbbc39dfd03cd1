"""The ``mdsample study`` and ``mdsample report`` subcommands (registered as built-ins by mdsample.cli).

``mdsample study STUDY`` takes a study file or the name of a shipped one (``mdsample/configs/study/NAME.yaml``),
then ``key=value`` run-config overrides for every cell. Under ``torchrun``/``accelerate launch`` the same
command shards every cell's samples over the processes.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from rich.console import Console

from mdsample.config import parse_dotlist
from mdsample.errors import MissingFileError

STUDY_DIR = Path(__file__).resolve().parent.parent / "configs" / "study"


def shipped_studies() -> list[str]:
    return sorted(p.stem for p in STUDY_DIR.glob("*.yaml"))


def study_file(name: str) -> Path:
    """``name`` as a path, else the shipped study of that name."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = STUDY_DIR / f"{name}.yaml"
    if path.suffix == "" and shipped.is_file():
        return shipped
    raise MissingFileError(f"study file {name!r} does not exist; give a YAML path or one of the shipped studies: "
                           f"{', '.join(shipped_studies()) or '(none)'}")


def configure_study(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("study", help="study YAML file, or the name of a shipped study (e.g. molecule)")
    parser.add_argument("--out", help="study directory (default: the study's `out`, else runs/studies/<name>)")
    parser.add_argument("--device", help="device of every cell: auto, cpu, cuda (part of each cell's key)")
    parser.add_argument("--dry-run", action="store_true", help="list the cells and which are recorded; run nothing")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="run-config overrides for every cell")


def run_study_command(args: argparse.Namespace) -> int:
    from mdsample.config import check_device, check_out_dir
    from mdsample.study.spec import load_study, overrides

    study = load_study(study_file(args.study))
    extra = overrides(parse_dotlist(args.overrides), "the command's KEY=VALUE overrides")
    if args.device:
        check_device(args.device, "--device")
        extra["device"] = args.device
    check_out_dir(args.out, "--out")
    from mdsample.study.distributed import join, leave  # torch: only once the input is known to be good
    from mdsample.study.runner import run_study

    shard = join()
    try:
        run_study(study, extra=extra, out=args.out, progress=not args.no_progress, dry_run=args.dry_run,
                  shard=shard, command=shlex.join(["mdsample", *args.argv]))
    finally:
        leave(shard)
    return 0


def configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="a study's results.jsonl, or its directory")
    parser.add_argument("--out", help="directory for report.md and the plots (default: the results' directory)")
    parser.add_argument("--quality", action="append", default=[], metavar="DOMAIN=METRIC[:lower]",
                        help="override a domain's quality metric, e.g. molecule=validity (repeatable)")


def run_report_command(args: argparse.Namespace) -> int:
    from mdsample.study.report import parse_quality, write_report

    write_report(args.results, args.out, parse_quality(args.quality), Console())
    return 0
