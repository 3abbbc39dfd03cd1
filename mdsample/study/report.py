"""Reports of a results file: settings averaged over seeds, rich tables, a Markdown report and its Pareto plots.

Only the latest record of each cell counts (``store.current``), so a cell recomputed after a config change never
mixes with its stale line. A *setting* is one sampler at one grid point of one domain and task; its seeds are
averaged (quality also gets its standard deviation). A metric that is undefined for any seed is undefined for the
setting, rather than silently averaged over the seeds that happened to work. Cost is NFE per sample (denoiser
calls) and decode seconds per sample (``wall_s_per_sample``: decode time summed over processes / samples).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mdsample.errors import ConfigError
from mdsample.study.cells import setting
from mdsample.study.pareto import front, plot_group
from mdsample.study.spec import Quality
from mdsample.study.store import ResultsFileError, ResultsStore, current, results_path

RUN_KEYS = ("domain", "sampler", "n", "nfe_mean", "nfe_p50", "nfe_p90", "wall_s_total", "wall_s_per_sample")
REPORT_FILE = "report.md"
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
           "tab:olive", "tab:cyan")


@dataclass
class Setting:
    """One sampler at one grid point of a domain and task, averaged over its seeds."""

    study: str
    sampler: str
    setting: str
    seeds: list[int]
    quality: float
    quality_std: float
    nfe: float
    nfe_p90: float
    seconds: float
    metrics: dict[str, float]
    front: list[str] = field(default_factory=list)  # the costs ("NFE", "time") on whose Pareto front it lies


@dataclass
class Group:
    """The settings of one domain and task, which share a quality metric and one plot."""

    domain: str
    task: str
    quality: Quality
    settings: list[Setting]

    @property
    def name(self) -> str:
        return f"{self.domain} / {self.task}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_-]+", "_", f"{self.domain}-{self.task}")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.nan


def _setting(records: list[dict[str, Any]], quality: Quality) -> Setting:
    first = records[0]
    metrics = [r.get("metrics", {}) for r in records]
    names = [k for k in first.get("metrics", {}) if k not in RUN_KEYS and k != quality.metric
             and isinstance(first["metrics"][k], int | float | None) and not isinstance(first["metrics"][k], bool)]
    qualities = [_number(m.get(quality.metric)) for m in metrics]
    mean = _mean(qualities)
    return Setting(
        study=first.get("study", ""),
        sampler=first["cell"]["sampler"],
        setting=setting(first["cell"]["params"]),
        seeds=sorted(r["cell"]["seed"] for r in records),
        quality=mean,
        quality_std=float(np.std(qualities)) if math.isfinite(mean) else math.nan,
        nfe=_mean(_number(r["nfe"]["mean"]) for r in records),
        nfe_p90=_mean(_number(r["nfe"]["p90"]) for r in records),
        seconds=_mean(_number(m.get("wall_s_per_sample")) for m in metrics),
        metrics={k: _mean(_number(m.get(k)) for m in metrics) for k in names},
    )


def aggregate(records: list[dict[str, Any]], qualities: dict[str, Quality] | None = None) -> list[Group]:
    """Groups (per domain and task, in order of appearance) of settings averaged over seeds, fronts marked.

    ``qualities`` (domain -> Quality) overrides the quality the records carry.
    """
    qualities = dict(qualities or {})
    cells: dict[tuple[str, str], dict[tuple[str, str, str], list[dict[str, Any]]]] = {}
    for record in records:
        cell = record["cell"]
        qualities.setdefault(cell["domain"], Quality(**record["quality"]))
        by_setting = cells.setdefault((cell["domain"], cell["task"]), {})
        key = (record.get("study", ""), cell["sampler"], setting(cell["params"]))
        by_setting.setdefault(key, []).append(record)
    groups = []
    for (domain, task), by_setting in cells.items():
        quality = qualities[domain]
        settings = [_setting(rs, quality) for rs in by_setting.values()]
        for cost, name in (("nfe", "NFE"), ("seconds", "time")):
            on = front([getattr(s, cost) for s in settings], [s.quality for s in settings], quality.higher_is_better)
            for s, flag in zip(settings, on, strict=True):
                if flag:
                    s.front.append(name)
        groups.append(Group(domain, task, quality, settings))
    return groups


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "n/a"


def _quality_text(s: Setting) -> str:
    if len(s.seeds) > 1 and math.isfinite(s.quality):
        return f"{_fmt(s.quality)} ± {_fmt(s.quality_std)}"
    return _fmt(s.quality)


def _label(s: Setting, many_studies: bool) -> str:
    return f"{s.study}: {s.sampler}" if many_studies else s.sampler


def rich_tables(groups: list[Group]) -> list[Table]:
    """One table per domain and task, one row per setting: quality, cost and the Pareto fronts it is on."""
    many = len({s.study for g in groups for s in g.settings}) > 1
    tables = []
    for group in groups:
        table = Table(title=f"{group.name}: {group.quality.describe()}, mean over seeds")
        for column, justify in (("sampler", "left"), ("setting", "left"), ("seeds", "right"),
                                (group.quality.metric, "right"), ("NFE", "right"), ("NFE p90", "right"),
                                ("s/sample", "right"), ("Pareto", "left")):
            table.add_column(column, justify=justify, overflow="fold")
        for s in sorted(group.settings, key=lambda s: (s.sampler, s.nfe)):
            table.add_row(Text(_label(s, many)), Text(s.setting), str(len(s.seeds)), _quality_text(s), _fmt(s.nfe),
                          _fmt(s.nfe_p90), _fmt(s.seconds), ", ".join(s.front))
        tables.append(table)
    return tables


def _markdown_table(group: Group, many: bool) -> list[str]:
    extra = list(dict.fromkeys(k for s in group.settings for k in s.metrics))  # the domain's own order
    head = ["sampler", "setting", "seeds", group.quality.metric, "NFE", "NFE p90", "s/sample", "Pareto", *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in sorted(group.settings, key=lambda s: (s.sampler, s.nfe)):
        row = [_label(s, many), f"`{s.setting}`", str(len(s.seeds)), _quality_text(s), _fmt(s.nfe), _fmt(s.nfe_p90),
               _fmt(s.seconds), ", ".join(s.front), *(_fmt(s.metrics.get(k, math.nan)) for k in extra)]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _provenance(records: list[dict[str, Any]]) -> list[str]:
    def distinct(values: Iterable[str]) -> str:
        return "; ".join(sorted(set(values)))

    commands = distinct(f"`{r['command']}`" for r in records if r.get("command"))
    devices = distinct(f"{r['device']['type']} ({r['device']['name']})" for r in records if "device" in r)
    worlds = distinct(str(r.get("world_size", 1)) for r in records)
    versions = distinct(", ".join(f"{k} {v}" for k, v in r["versions"].items()) for r in records if "versions" in r)
    return [*([f"Results of: {commands}."] if commands else []),
            f"Devices: {devices or 'unknown'}; processes per cell: {worlds}.", f"Versions: {versions or 'unknown'}."]


def markdown(groups: list[Group], records: list[dict[str, Any]], source: str, superseded: int, torn: bool,
             images: dict[str, str]) -> str:
    """The report as Markdown; ``images`` maps a group's slug to its plot's file name."""
    studies = ", ".join(sorted({r.get("study", "") for r in records}))
    settings = sum(len(g.settings) for g in groups)
    lines = [
        f"# Study report: {studies}",
        "",
        f"Made by `mdsample report {source}` from {len(records)} cells in {settings} settings"
        + (f"; {superseded} superseded lines (cells recomputed after a config change) ignored" if superseded else "")
        + ("; a torn last line (a killed writer) ignored" if torn else "") + ".",
        *_provenance(records),
        "",
        "Each point is one sampler setting averaged over its seeds (error bars and ± : standard deviation over seeds). "
        "Lines join one sampler's settings in order of cost. The dashed steps and circled points are the Pareto "
        "front over all samplers: the settings that no other setting matches or beats on both quality and cost. "
        "Cost is NFE (denoiser calls per sample, mean) and decode seconds per sample (summed over processes). "
        "The Pareto column says on which front a setting lies.",
    ]
    many = len({s.study for g in groups for s in g.settings}) > 1
    for group in groups:
        best = sorted((s for s in group.settings if "NFE" in s.front), key=lambda s: s.nfe)
        named = ", ".join(f"{s.sampler} `{s.setting}`" for s in best) or "none"
        lines += ["", f"## {group.name}", "", f"Quality: **{group.quality.describe()}**. Pareto-optimal against "
                  f"NFE: {named}.",
                  "", f"![{group.name}: quality vs NFE and vs seconds]({images[group.slug]})", "",
                  *_markdown_table(group, many)]
    return "\n".join(lines) + "\n"


def parse_quality(items: Iterable[str]) -> dict[str, Quality]:
    """``["molecule=fcd:lower", "text=accuracy"]`` -> domain -> Quality (higher is better unless ``:lower``)."""
    out = {}
    for item in items:
        domain, _, spec = item.partition("=")
        metric, _, better = spec.partition(":")
        if not domain or not metric or better not in ("", "higher", "lower"):
            raise ConfigError(f"--quality {item!r} must look like DOMAIN=METRIC[:higher|lower], "
                              "e.g. molecule=fcd:lower")
        out[domain] = Quality(metric, better or "higher")
    return out


def write_report(
    results: str | Path,
    out_dir: str | Path | None = None,
    qualities: dict[str, Quality] | None = None,
    console: Console | None = None,
) -> Path:
    """Print the table and write ``report.md`` plus one PNG per domain and task into ``out_dir``.

    ``results`` is a results file or a study directory; ``out_dir`` defaults to the results file's directory.
    """
    console = console or Console()
    path = results_path(results)
    records, torn = ResultsStore(path).read()
    if not records:
        raise ResultsFileError(f"results file {str(path)!r} holds no finished cell yet; run `mdsample study` first")
    records, superseded = current(records)
    groups = aggregate(records, qualities)
    for group in groups:
        if not any(group.quality.metric in r["metrics"] for r in records if r["cell"]["domain"] == group.domain):
            known = sorted({k for s in group.settings for k in s.metrics})
            raise ConfigError(f"quality metric {group.quality.metric!r} of domain {group.domain!r} is not in the "
                              f"results; choose one of {', '.join(known)} with --quality {group.domain}=METRIC[:lower]")
    out = Path(out_dir) if out_dir else path.parent
    out.mkdir(parents=True, exist_ok=True)
    colors = {name: _COLORS[i % len(_COLORS)]
              for i, name in enumerate(sorted({s.sampler for g in groups for s in g.settings}))}
    images = {}
    for group in groups:
        series: dict[str, dict[str, np.ndarray]] = {}
        for s in group.settings:
            entry = series.setdefault(s.sampler, {k: [] for k in ("nfe", "seconds", "quality", "std")})
            for k, v in (("nfe", s.nfe), ("seconds", s.seconds), ("quality", s.quality),
                         ("std", s.quality_std if len(s.seeds) > 1 else 0.0)):
                entry[k].append(v)
        arrays = {name: {k: np.asarray(v, dtype=float) for k, v in e.items()} for name, e in series.items()}
        image = plot_group(group.name, group.quality.describe(), group.quality.higher_is_better, arrays, colors,
                           out / f"{group.slug}.png")
        images[group.slug] = image.name
    report = out / REPORT_FILE
    report.write_text(markdown(groups, records, str(results), superseded, torn, images))
    for table in rich_tables(groups):
        console.print(table)
    if superseded:
        console.print(f"{superseded} superseded lines (cells recomputed after a config change) ignored")
    console.print(f"report written to {report}")
    return report
