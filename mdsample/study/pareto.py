"""Pareto fronts of quality against cost, and the plots that show them (matplotlib, Agg, no display needed).

A setting is on the front when no other setting is at least as cheap and at least as good with one of the two
strictly better: those are the only settings worth choosing at some budget. Settings whose quality is undefined
(NaN, e.g. FCD of a set with no valid molecule) are drawn nowhere and are never on the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mdsample.errors import ConfigError

LOG_SPAN = 8.0  # a cost axis spanning this factor or more is drawn on a log scale


def front(cost: Sequence[float], quality: Sequence[float], higher_is_better: bool) -> np.ndarray:
    """Bool mask of the non-dominated points (lower cost is better; quality in the given direction)."""
    x = np.asarray(cost, dtype=float)
    y = np.asarray(quality, dtype=float) * (1.0 if higher_is_better else -1.0)
    ok = np.isfinite(x) & np.isfinite(y)
    no_worse = (x[None, :] <= x[:, None]) & (y[None, :] >= y[:, None])  # [i, j]: j is no worse than i
    better = (x[None, :] < x[:, None]) | (y[None, :] > y[:, None])
    dominated = (no_worse & better & ok[None, :]).any(axis=1)
    return ok & ~dominated


def _front_line(x: np.ndarray, y: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x[on], kind="stable")
    return x[on][order], y[on][order]


def plot_group(
    title: str,
    quality_label: str,
    higher_is_better: bool,
    series: dict[str, dict[str, np.ndarray]],
    colors: dict[str, str],
    path: Path,
) -> Path:
    """Two panels (quality vs NFE, quality vs seconds per sample), one line per sampler, the front dashed.

    ``series[sampler]`` holds equal-length arrays ``nfe``, ``seconds``, ``quality`` and ``std`` (0 for one seed).
    """
    try:  # imported here: running a study needs no plotting library, only its report does
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        raise ConfigError("the report's plots need matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    names = sorted(series)
    for ax, cost, label in zip(axes, ("nfe", "seconds"),
                               ("NFE per sample (denoiser calls, mean)", "decode seconds per sample"), strict=True):
        for name in names:
            s = series[name]
            order = np.argsort(s[cost], kind="stable")
            ax.errorbar(s[cost][order], s["quality"][order], yerr=s["std"][order], marker="o", ms=4, capsize=2,
                        color=colors[name], label=name)
        x = np.concatenate([series[n][cost] for n in names])
        y = np.concatenate([series[n]["quality"] for n in names])
        fx, fy = _front_line(x, y, front(x, y, higher_is_better))
        if fx.size:
            ax.step(fx, fy, where="post", color="0.4", linestyle="--", linewidth=1, label="Pareto front")
            ax.scatter(fx, fy, s=70, facecolors="none", edgecolors="black", linewidths=1, zorder=3)
        finite = x[np.isfinite(x) & (x > 0)]
        if finite.size and finite.max() >= LOG_SPAN * finite.min():
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(quality_label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, metadata={"Software": None})
    return path
