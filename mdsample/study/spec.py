"""The study file: what a study declares, read from YAML and checked before anything runs.

Format (every section but ``domains`` and ``samplers`` optional)::

    name: molecule                 # default: the file's stem; names the output directory runs/studies/<name>
    n: 64                          # samples per cell (default: each domain's own n)
    seeds: [0, 1]                  # every setting runs once per seed (default [0])
    out: runs/studies/molecule     # default: runs/studies/<name>
    overrides: {batch_size: 64}    # run-config keys (dotted or nested) for every cell
    grid: {decode.steps: [16, 32]} # run-config key -> list of values, crossed with everything else
    domains:
      molecule:
        quality: {metric: fcd, better: lower}   # the metric the report calls quality; better: higher | lower
        tasks: [unconditional]                  # or {task: {overrides: ..., grid: ...}}; default: first task
        overrides: {...}
        grid: {...}
    samplers:                      # a list of names, or name -> {overrides: ..., grid: ..., tasks: ...}
      confidence: {grid: {decode.steps: [14, 28, 55]}}
      klass: {grid: {sampler.kl_threshold: [0.005, 0.02]}}
      threshold: {tasks: {unconditional: {overrides: {sampler.threshold: 0.8}}}}   # this sampler on one task

A grid value may be a mapping of several keys set together (a *bundle*): ``grid: {model: [{domain.model: A,
decode.block_length: 64}, {domain.model: B, decode.block_length: null}]}`` crosses two settings, not four; the
grid key (``model``) only names the dimension. Settings that depend on a model, a task and a sampler at once (e.g.
KLASS's published per-model, per-dataset thresholds) are bundles in ``samplers.<name>.tasks.<task>.grid``.

A cell's config is layered study < domain < task < sampler < sampler-on-task overrides, then its grid point (a
grid key set at a more specific level replaces the less specific list), then ``key=value`` arguments of the command.
``null`` means "the default". The runner owns ``seed`` (from ``seeds``), ``out``, ``progress``, ``trace`` and
``debug``, and the study's structure owns ``domain.name``, ``sampler.name`` and ``domain.task``; setting them
elsewhere is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdsample.config import load_yaml
from mdsample.errors import ConfigError, UnknownChoiceError

BETTER = ("higher", "lower")
OWNED_KEYS = ("seed", "out", "progress", "trace", "debug", "domain.name", "sampler.name", "domain.task")
_TOP = ("name", "n", "seeds", "out", "overrides", "grid", "domains", "samplers")
_DOMAIN = ("quality", "tasks", "overrides", "grid")
_LEVEL = ("overrides", "grid")
_SAMPLER = ("overrides", "grid", "tasks")
_QUALITY = ("metric", "better")


@dataclass(frozen=True)
class Quality:
    """The metric a domain's report plots as quality, and which direction is better."""

    metric: str
    better: str = "higher"

    @property
    def higher_is_better(self) -> bool:
        return self.better == "higher"

    def describe(self) -> str:
        return f"{self.metric} ({self.better} is better)"


@dataclass
class Level:
    """Overrides (dotted key -> value) and grid (dotted key -> values) of one level of the study."""

    overrides: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    tasks: dict[str, Level] = field(default_factory=dict)  # a sampler's levels for single tasks


@dataclass
class DomainEntry:
    quality: Quality
    tasks: dict[str, Level]  # empty: the domain's first task
    level: Level = field(default_factory=Level)


@dataclass
class Study:
    """A parsed study file. ``level`` holds the top-level overrides (``n`` among them) and grid."""

    name: str
    source: str
    seeds: list[int]
    level: Level
    domains: dict[str, DomainEntry]
    samplers: dict[str, Level]
    out: str | None = None

    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path("runs") / "studies" / self.name


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"decode": {"steps": 8}, "sampler.k_max": 2}`` -> ``{"decode.steps": 8, "sampler.k_max": 2}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of keys, got {type(value).__name__}")
    return value


def _check_keys(node: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(node) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(allowed)}")


def overrides(value: Any, where: str) -> dict[str, Any]:
    """A mapping of run-config overrides as dotted keys; ConfigError for keys the study itself sets."""
    flat = flatten(_mapping(value, where))
    owned = sorted(k for k in flat if k in OWNED_KEYS)
    if owned:
        raise ConfigError(f"{where} may not set {owned[0]!r}: the study sets it (seeds: list, domains/samplers/tasks: "
                          "sections, out: top level or --out)")
    return flat


def _grid(value: Any, where: str) -> dict[str, list[Any]]:
    flat = overrides(value, where)
    for key, values in flat.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.{key} must be a non-empty list of values, e.g. [16, 32], got {values!r}")
        bundles = [isinstance(v, dict) for v in values]
        if any(bundles) and not all(bundles):
            raise ConfigError(f"{where}.{key} mixes mappings (bundles of keys) with plain values; use one kind")
        if all(bundles):
            flat[key] = [overrides(v, f"{where}.{key}[{i}]") for i, v in enumerate(values)]
    return flat


def expand_point(point: dict[str, Any]) -> dict[str, Any]:
    """A grid point as run-config keys: a bundle's keys are set together, its grid key itself names nothing."""
    out: dict[str, Any] = {}
    for key, value in point.items():
        out.update(value if isinstance(value, dict) else {key: value})
    return out


def _level(value: Any, where: str, allowed: tuple[str, ...] = _LEVEL) -> Level:
    node = _mapping(value, where)
    _check_keys(node, allowed, where)
    return Level(overrides(node.get("overrides"), f"{where}.overrides"), _grid(node.get("grid"), f"{where}.grid"))


def _sampler(value: Any, where: str) -> Level:
    """A sampler's level, with its own levels for single tasks under ``tasks``."""
    node = _mapping(value, where)
    _check_keys(node, _SAMPLER, where)
    level = _level({k: node[k] for k in _LEVEL if k in node}, where)
    level.tasks = {task: _level(entry, f"{where}.tasks.{task}")
                   for task, entry in _mapping(node.get("tasks"), f"{where}.tasks").items()}
    return level


def _named(value: Any, where: str) -> dict[str, Any]:
    """A section given as a list of names or as name -> entry."""
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must list names, got {value!r}")
        return dict.fromkeys(value)
    return _mapping(value, where)


def _quality(value: Any, where: str) -> Quality:
    if value is None:
        raise ConfigError(f"{where} is missing: say which metric is the domain's quality, e.g. "
                          "quality: {metric: fcd, better: lower}")
    node = _mapping(value, where)
    _check_keys(node, _QUALITY, where)
    if not isinstance(node.get("metric"), str):
        raise ConfigError(f"{where}.metric must name one of the domain's metrics, e.g. fcd or accuracy")
    better = node.get("better", "higher")
    if better not in BETTER:
        raise UnknownChoiceError(f"{where}.better", str(better), BETTER)
    return Quality(node["metric"], better)


def _seeds(value: Any, where: str) -> list[int]:
    if value is None:
        return [0]
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in value):
        raise ConfigError(f"{where}.seeds must be a non-empty list of integers, e.g. [0, 1], got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}.seeds lists a seed twice: {value}")
    return list(value)


def parse_study(raw: dict[str, Any], source: str, default_name: str) -> Study:
    """A Study from the mapping of a study file (``source`` names the file in error messages)."""
    where = f"study {source!r}"
    _check_keys(raw, _TOP, where)
    level = _level({k: raw[k] for k in _LEVEL if k in raw}, where)
    if raw.get("n") is not None:
        if not isinstance(raw["n"], int) or isinstance(raw["n"], bool) or raw["n"] < 1:
            raise ConfigError(f"{where}: n must be a positive integer, got {raw['n']!r}")
        level.overrides = {"n": raw["n"], **level.overrides}
    name = raw.get("name") or default_name
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{where}: name must be letters, digits, - and _, got {name!r}")
    domains: dict[str, DomainEntry] = {}
    for dom, value in _named(raw.get("domains"), f"{where}.domains").items():
        node = _mapping(value, f"{where}.domains.{dom}")
        _check_keys(node, _DOMAIN, f"{where}.domains.{dom}")
        tasks = {task: _level(entry, f"{where}.domains.{dom}.tasks.{task}")
                 for task, entry in _named(node.get("tasks"), f"{where}.domains.{dom}.tasks").items()}
        domains[dom] = DomainEntry(_quality(node.get("quality"), f"{where}.domains.{dom}.quality"), tasks,
                                   _level({k: node[k] for k in _LEVEL if k in node}, f"{where}.domains.{dom}"))
    samplers = {s: _sampler(entry, f"{where}.samplers.{s}") for s, entry in _named(raw.get("samplers"),
                                                                                    f"{where}.samplers").items()}
    if not domains or not samplers:
        raise ConfigError(f"{where} needs at least one entry under `domains:` and one under `samplers:`")
    return Study(name, source, _seeds(raw.get("seeds"), where), level, domains, samplers, raw.get("out"))


def load_study(path: str | Path) -> Study:
    """Read and check a study file (MissingFileError if absent, ConfigError naming the bad key otherwise)."""
    path = Path(path)
    return parse_study(load_yaml(path), str(path), path.stem)
