"""What one results line holds: the cell, its resolved config, its metrics, NFE statistics, timing and provenance.

Everything a report or a later reader needs is in the line itself (the quality metric included), so a results
file can be reported, merged or archived without the study file that produced it.
"""

from __future__ import annotations

import datetime
import platform
from typing import Any

import torch
from omegaconf import OmegaConf

from mdsample import __version__
from mdsample.api import RunResult
from mdsample.study.cells import Cell

NFE_QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9, "p99": 0.99}


def versions() -> dict[str, str]:
    import transformers

    return {"mdsample": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def device_info(device: str) -> dict[str, str]:
    """The device a cell ran on: its type and, for GPUs, the model name."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(dev)}
    return {"type": dev.type, "name": platform.processor() or platform.machine()}


def nfe_summary(nfe: torch.Tensor) -> dict[str, float]:
    """Mean, spread and percentiles of the per-sample number of denoiser calls."""
    values = nfe.double()
    quantiles = values.quantile(torch.tensor(list(NFE_QUANTILES.values()), dtype=torch.float64))
    return {"mean": values.mean().item(), "std": values.std(correction=0).item(), "min": values.min().item(),
            **{name: q.item() for name, q in zip(NFE_QUANTILES, quantiles, strict=True)},
            "max": values.max().item()}


def make_record(cell: Cell, result: RunResult, elapsed_s: float, world_size: int, command: str = "") -> dict[str, Any]:
    """The results line of a finished cell. ``elapsed_s``: the cell's wall-clock (model load, decode, metrics);
    ``command``: the command line of the study run that produced it."""
    return {
        "key": cell.key,
        "study": cell.study,
        "command": command,
        "label": cell.label,
        "cell": cell.coordinates(),
        "quality": {"metric": cell.quality.metric, "better": cell.quality.better},
        "config": OmegaConf.to_container(result.config, resolve=True),
        "metrics": dict(result.metrics),
        "nfe": nfe_summary(result.nfe),
        "wall_s": elapsed_s,
        "device": device_info(str(result.config.device)),
        "world_size": world_size,
        "versions": versions(),
        "run_dir": str(result.run_dir),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
