"""Grid expansion: every cell of a study, with its fully resolved run config and the key that identifies it.

The key is a hash of the resolved config, not of the study file's wording, so a cell is recognised however the
file is rearranged, and anything that changes what the cell would compute (a grid value, a domain default, the
device type) gives a new key: the old result is then superseded, never mixed in. Keys leave out what only says
where or how a run reports (``out``, ``progress``, ``debug``, ``trace``) and keep the device's type, not its index
(``cuda:3`` computes what ``cuda:0`` does), so the same study keys alike on one process and under torchrun.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mdsample import plugin_manager
from mdsample.config import resolve_config
from mdsample.errors import ConfigError, UnknownChoiceError
from mdsample.study.spec import Level, Quality, Study, expand_point

UNKEYED = ("out", "progress", "debug", "trace")


@dataclass(frozen=True)
class Cell:
    """One run of a study: where it sits in the grid, its resolved config and its key."""

    study: str
    domain: str
    task: str
    sampler: str
    params: dict[str, Any]
    seed: int
    quality: Quality
    config: DictConfig
    key: str

    @property
    def setting(self) -> str:
        """The grid point, e.g. ``decode.steps=16 sampler.kl_threshold=0.01`` (``default`` without a grid)."""
        return setting(self.params)

    @property
    def label(self) -> str:
        """Human-readable identity within the study; a changed config keeps its label and gets a new key."""
        return f"{self.domain}/{self.task}/{self.sampler} {self.setting} seed={self.seed}"

    def coordinates(self) -> dict[str, Any]:
        return {"domain": self.domain, "task": self.task, "sampler": self.sampler, "params": self.params,
                "seed": self.seed}


def setting(params: dict[str, Any]) -> str:
    """A grid point as text: ``decode.steps=16 sampler.kl_threshold=0.01`` (``default`` for the empty point)."""
    def text(value: Any) -> str:
        return json.dumps(value) if isinstance(value, str | list | dict) or value is None else str(value)

    return " ".join(f"{k}={text(v)}" for k, v in params.items()) or "default"


def cell_key(cfg: DictConfig) -> str:
    """Hash of the resolved config without the reporting keys, with the device reduced to its type."""
    values = OmegaConf.to_container(cfg, resolve=True)
    for key in UNKEYED:
        values.pop(key, None)
    from mdsample.api import resolve_device  # torch: only once the study's names are known to be good

    values["device"] = resolve_device(str(cfg.device)).type
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def _points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _tasks(study: Study, domain: str) -> dict[str, Level]:
    known = list(plugin_manager.domain_info(domain).tasks)
    tasks = study.domains[domain].tasks or {known[0]: Level()}
    for task in tasks:
        if task not in known:
            raise UnknownChoiceError(f"task of domain {domain!r} (study {study.source!r})", task, known)
    return tasks


def expand(study: Study, extra: dict[str, Any] | None = None) -> list[Cell]:
    """Every cell of ``study`` in run order (domain, task, sampler, grid point, seed), each config resolved.

    ``extra`` (dotted key -> value) is applied to every cell after its grid point: the command's ``key=value``s.
    A config a cell cannot resolve is a ConfigError naming the cell, before anything runs.
    """
    extra = extra or {}
    for sampler in study.samplers:
        plugin_manager.sampler_info(sampler)  # UnknownChoiceError lists the registered ones
    cells: list[Cell] = []
    studied = {task for domain in study.domains for task in _tasks(study, domain)}
    for sampler, sampler_level in study.samplers.items():
        stray = sorted(set(sampler_level.tasks) - studied)
        if stray:
            raise ConfigError(f"study {study.source!r}: samplers.{sampler}.tasks names {stray[0]!r}, which no domain "
                              f"of the study runs ({', '.join(sorted(studied))})")
    for domain, entry in study.domains.items():
        for task, task_level in _tasks(study, domain).items():
            for sampler, sampler_level in study.samplers.items():
                levels = (study.level, entry.level, task_level, sampler_level,
                          sampler_level.tasks.get(task, Level()))
                overrides = {k: v for level in levels for k, v in level.overrides.items()}
                grid = {k: v for level in levels for k, v in level.grid.items()}
                for point in _points(grid):
                    for seed in study.seeds:
                        flags = {**overrides, **expand_point(point), **extra, "domain.task": task, "seed": seed}
                        cells.append(_cell(study, domain, task, sampler, point, seed, entry.quality, flags))
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.key in seen:
            raise ConfigError(f"study {study.source!r}: cells {seen[cell.key].label} and {cell.label} resolve to the "
                              "same config; remove the repeated grid value")
        seen[cell.key] = cell
    return cells


def _cell(study: Study, domain: str, task: str, sampler: str, point: dict[str, Any], seed: int, quality: Quality,
          flags: dict[str, Any]) -> Cell:
    label = f"{domain}/{task}/{sampler} {setting(point)} seed={seed}"
    try:
        cfg = resolve_config(domain, sampler, flags=flags)
        key = cell_key(cfg)
    except ConfigError as exc:
        raise ConfigError(f"study {study.source!r}, cell {label}: {exc}") from exc
    return Cell(study.name, domain, task, sampler, point, seed, quality, cfg, key)
