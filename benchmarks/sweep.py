"""What the sampler sweeps over the shipped domain models share: a setting's JSON row and the quality-vs-NFE figure.

Used by image_samplers.py (rows and figure) and molecule_quality.py (figure), so that their rows carry the same
fields (rule, settings, n, mean NFE, wall-clock, sampling seconds per 1,000 samples, then the domain's metrics) and
their figures read alike.
"""

from __future__ import annotations

from pathlib import Path


def setting_row(rule: str, overrides: dict, n: int, result, seconds: float, keys: tuple[str, ...],
                **extra) -> dict:
    """One setting's row from ``mdsample.sample``'s result; ``keys`` are the metrics kept, ``extra`` more fields."""
    row = {"rule": rule, "settings": overrides, "n": n, **extra, "nfe_mean": float(result.nfe.double().mean()),
           "seconds": seconds, "sampling_s_per_1000": result.metrics["wall_s_total"] * 1000 / n}
    return row | {k: result.metrics.get(k) for k in keys}


def plot_quality_vs_nfe(rows: list[dict], path: Path, xlabel: str, panels: list[tuple[str, str]],
                        xscale: str = "linear") -> None:
    """One panel per (metric, y label) against mean NFE, one line per rule through its settings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rules = list(dict.fromkeys(r["rule"] for r in rows))
    height = max(4.0, 0.19 * len(rules) + 0.8)  # tall enough for the legend beside the panels
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), height), squeeze=False)
    colours = plt.get_cmap("tab20" if len(rules) > 10 else "tab10").colors
    styles = ("o-", "s--", "^:")  # past 20 lines a colour comes back with another marker and dash
    for i, rule in enumerate(rules):
        mine = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r["nfe_mean"])
        for ax, (metric, _) in zip(axes[0], panels, strict=True):
            ax.plot([r["nfe_mean"] for r in mine], [r[metric] for r in mine], styles[i // len(colours) % 3],
                    label=rule, color=colours[i % len(colours)])
    for ax, (_, ylabel) in zip(axes[0], panels, strict=True):
        ax.set(xlabel=xlabel, ylabel=ylabel, xscale=xscale)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))  # beside the panels, never over
    fig.tight_layout()
    fig.savefig(path, dpi=120)
