"""The resumable training checkpoint: everything ``train`` needs to continue as if it had never stopped.

One safetensors file (the project keeps tensors in safetensors only): the weights, the AdamW moments, the best
validation weights so far, the random states (torch's global one, the batch generator's, CUDA's) and the loss
accumulators, with the step, the best step and loss, the optimizer's parameter groups and the training log's length
as JSON metadata. The learning-rate schedule is a function of the step, and the data position is the batch
generator's state, so nothing else is needed. It is written to a temporary file, synced and renamed over the old
one, so a kill at any moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mdsample.errors import BrokenFileError

CHECKPOINT = "checkpoint.safetensors"
FORMAT = "mdsample-train-checkpoint-1"


@dataclass
class Progress:
    """The loop's own state at a step boundary."""

    step: int
    best: tuple[float, int, dict[str, torch.Tensor]] | None
    log_bytes: int
    run_loss: torch.Tensor
    run_ce: torch.Tensor


def _own(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """CPU copies that share no storage (tied weights would otherwise be refused by safetensors)."""
    return {f"{prefix}{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator,
                    progress: Progress) -> None:
    """Write the checkpoint atomically (temporary file, fsync, rename)."""
    state = optimizer.state_dict()
    tensors = _own(model.state_dict(), "model.")
    for index, slots in state["state"].items():
        tensors.update(_own({k: torch.as_tensor(v) for k, v in slots.items()}, f"optim.{index}."))
    if progress.best is not None:
        tensors.update(_own(progress.best[2], "best."))
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state().cpu()
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    tensors["acc.loss"] = progress.run_loss.detach().cpu().reshape(1)
    tensors["acc.ce"] = progress.run_ce.detach().cpu().reshape(1)
    meta = {
        "format": FORMAT,
        "step": progress.step,
        "best_loss": None if progress.best is None else repr(progress.best[0]),
        "best_step": None if progress.best is None else progress.best[1],
        "log_bytes": progress.log_bytes,
        "param_groups": state["param_groups"],
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"mdsample": json.dumps(meta)})
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    generator: torch.Generator) -> Progress:
    """Restore model, optimizer and random states from ``path``; returns the loop's state. A truncated or foreign
    file is a BrokenFileError naming it."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get("mdsample", "{}"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        device = next(model.parameters()).device
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                slots.setdefault(int(index), {})[name] = value
        optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
        best_weights = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
        best = None if meta["best_loss"] is None else (float(meta["best_loss"]), meta["best_step"], best_weights)
        torch.set_rng_state(tensors["rng.torch"])
        generator.set_state(tensors["rng.generator"])
        cuda = [tensors[f"rng.cuda.{i}"] for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
        return Progress(meta["step"], best, meta["log_bytes"], tensors["acc.loss"].to(device).reshape(()),
                        tensors["acc.ce"].to(device).reshape(()))
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
        raise BrokenFileError(path, "training checkpoint", exc) from exc
