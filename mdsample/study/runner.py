"""Running a study: plan against the results file, execute the pending cells with progress bars, summarise.

The plan is every cell whose key the results file does not hold yet; rank 0 makes it and shares it, so all
processes of a sharded study run the same cells in the same order. Each cell is an ``mdsample.api.execute`` run
into ``<out>/cells/<key>/`` (samples, config.yaml, metrics.json), and its line is appended to the results file
the moment it finishes, so an interruption loses at most the cell in flight. Cells already recorded are skipped;
a cell recorded under another key (its config changed) is recomputed and said so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mdsample.api import Shard, execute
from mdsample.core.callbacks import Callback
from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.study.cells import Cell, expand
from mdsample.study.distributed import local_device, share
from mdsample.study.record import make_record
from mdsample.study.report import aggregate, rich_tables
from mdsample.study.spec import Study
from mdsample.study.store import RESULTS_FILE, ResultsStore

CELLS_DIR = "cells"


@dataclass
class Plan:
    """The cells of a study split by what the results file already holds."""

    cells: list[Cell]
    pending: list[Cell]
    changed: list[Cell]  # pending cells whose label is recorded under another key

    @property
    def recorded(self) -> int:
        return len(self.cells) - len(self.pending)

    def status(self, cell: Cell) -> str:
        if cell.key in {c.key for c in self.changed}:
            return "changed"
        return "pending" if cell.key in {c.key for c in self.pending} else "recorded"


@dataclass
class Outcome:
    """What a study run did (rank 0): its plan, the keys it ran, and where the results are."""

    plan: Plan
    results: Path
    ran: list[str] = field(default_factory=list)


def make_plan(cells: list[Cell], records: list[dict[str, Any]]) -> Plan:
    keys = {r["key"] for r in records}
    labels = {(r.get("study"), r.get("label")) for r in records}
    pending = [c for c in cells if c.key not in keys]
    return Plan(cells, pending, [c for c in pending if (c.study, c.label) in labels])


def _share_of(n: int, batch_size: int, shard: Shard) -> int:
    """How many of a cell's ``n`` samples this rank decodes (its whole batches ``rank, rank + world, ...``)."""
    return sum(min(batch_size, n - b * batch_size) for b in range(shard.rank, math.ceil(n / batch_size), shard.world))


class SampleProgress(Callback):
    """Advances a rich task by the samples of each batch as they finish (one host sync per step)."""

    def __init__(self, progress: Progress, task: TaskID):
        self.progress, self.task, self.done = progress, task, 0

    def on_start(self, state: MaskedState) -> None:
        self.done = 0

    def _finished(self, state: MaskedState) -> int:
        return int((~state.masked[:, state.gen_start :].any(dim=1) | state.exited).sum())

    def on_step(self, state: MaskedState, step: int, rows: torch.Tensor, committed: torch.Tensor) -> None:
        now = self._finished(state)
        self.progress.advance(self.task, now - self.done)
        self.done = now

    def on_end(self, state: MaskedState) -> None:
        self.progress.advance(self.task, state.batch - self.done)


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=not enabled)


def _check_quality(cell: Cell, metrics: dict[str, Any], source: str) -> None:
    if cell.quality.metric not in metrics:
        names = ", ".join(k for k, v in metrics.items() if isinstance(v, float))
        raise ConfigError(f"study {source!r}: quality metric {cell.quality.metric!r} of domain {cell.domain!r} is not "
                          f"among its metrics ({names}); fix domains.{cell.domain}.quality.metric")


def run_study(
    study: Study,
    *,
    extra: dict[str, Any] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
    dry_run: bool = False,
    console: Console | None = None,
    shard: Shard | None = None,
    command: str = "",
) -> Outcome | None:
    """Run every pending cell of ``study`` (see the module docstring); rank 0 returns the Outcome, others None.

    ``extra``: dotted run-config overrides for every cell (the command's ``key=value``s). ``dry_run`` prints the
    plan and runs nothing. ``command`` is recorded in every results line (provenance).
    """
    shard = shard or Shard()
    lead = shard.rank == 0
    console = console or Console()
    out_dir = Path(out) if out else study.out_dir()
    store = ResultsStore(out_dir / RESULTS_FILE)
    cells = expand(study, extra)
    plan = make_plan(cells, store.records() if lead else [])
    pending_keys = set(share(shard, [c.key for c in plan.pending]))
    pending = [c for c in cells if c.key in pending_keys]
    if dry_run:
        if lead:
            _print_plan(plan, console)
        return Outcome(plan, store.path) if lead else None

    outcome = Outcome(plan, store.path)
    if lead:
        console.print(f"study {study.name}: {len(cells)} cells, {plan.recorded} already recorded, {len(pending)} to "
                      f"run ({len(plan.changed)} changed since recorded); results: {store.path}", markup=False)
        for cell in plan.changed:
            console.print(f"  config changed, recomputing: {cell.label}", markup=False)
    bars = _progress(console, progress and lead)
    try:
        with bars:
            overall = bars.add_task(f"study {study.name}", total=len(pending))
            for cell in pending:
                cfg = cell.config.copy()
                cfg.out, cfg.progress = str(out_dir / CELLS_DIR / cell.key), False
                cfg.device = local_device(shard, str(cfg.device))
                task = bars.add_task(f"  {cell.label}", total=_share_of(cfg.n, cfg.batch_size, shard))
                start = time.perf_counter()
                result = execute(cfg, shard=shard, console=Console(quiet=True),
                                 callbacks=[SampleProgress(bars, task)] if lead and progress else [])
                elapsed = time.perf_counter() - start
                bars.remove_task(task)
                if result is not None:
                    store.append(make_record(cell, result, elapsed, shard.world, command))
                    outcome.ran.append(cell.key)
                    value = result.metrics.get(cell.quality.metric)
                    shown = f"{value:.4g}" if isinstance(value, float) else "n/a"
                    bars.console.print(f"[{len(outcome.ran)}/{len(pending)}] {cell.label}: {cell.quality.metric}="
                                       f"{shown}, NFE {result.nfe.double().mean().item():.1f}, {elapsed:.1f} s",
                                       markup=False)
                    _check_quality(cell, result.metrics, study.source)
                bars.advance(overall)
    except KeyboardInterrupt:
        if lead:
            console.print(f"interrupted: {len(outcome.ran)} of {len(pending)} cells finished and recorded in "
                          f"{store.path}; rerun the same command to resume", markup=False)
        raise
    if lead:
        _print_summary(outcome, store, console)
    return outcome if lead else None


def _print_plan(plan: Plan, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"plan: {len(plan.pending)} of {len(plan.cells)} cells to run")
    for column in ("cell", "key", "status"):
        table.add_column(column)
    for cell in plan.cells:
        table.add_row(Text(cell.label), cell.key, plan.status(cell))
    console.print(table)


def _print_summary(outcome: Outcome, store: ResultsStore, console: Console) -> None:
    keys = {c.key for c in outcome.plan.cells}
    records = [r for r in store.records() if r["key"] in keys]
    for table in rich_tables(aggregate(records)):
        console.print(table)
    plan = outcome.plan
    console.print(f"{len(plan.cells)} cells: {len(outcome.ran)} ran ({len(plan.changed)} changed since recorded), "
                  f"{plan.recorded} already recorded. Report: mdsample report {store.path}", markup=False)
