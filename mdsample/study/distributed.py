"""Sharding a study over processes with torch.distributed, started by ``torchrun`` or ``accelerate launch``.

The launchers export ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address); with no launcher
they are absent and the study runs in one process, so the same command works either way. Each process takes GPU
``LOCAL_RANK`` modulo the visible GPUs, so a host with fewer GPUs than processes shares them (two ranks on one
H200 must not ask for ``cuda:1``). The default process group uses NCCL when every process of the host has a GPU of
its own, and gloo otherwise (NCCL refuses two ranks on one GPU, and a host without CUDA has no NCCL); the Python
objects a study exchanges (the plan, and each cell's decoded batches for rank 0) always travel through a gloo group
on the CPU, where pickled objects belong. Every rank runs every cell of the plan, on batches ``rank, rank + world,
...`` of it (``mdsample.api.execute``); rank 0 gathers them, computes the metrics and writes the results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mdsample.api import Shard
from mdsample.errors import ConfigError


@dataclass(frozen=True)
class ProcessShard(Shard):
    """This process's shard in a torch.distributed job; ``group`` is the gloo group objects travel through."""

    local_rank: int = 0
    group: Any = None
    owns_group: bool = False  # the study started the process group, so it also ends it

    def gather(self, payload: Any) -> list[Any] | None:
        out: list[Any] | None = [None] * self.world if self.rank == 0 else None
        dist.gather_object(payload, out, dst=0, group=self.group)
        return out

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]


def _environment_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer; launch with torchrun") from None


def local_gpu(local_rank: int) -> int:
    """The index of the visible GPU that process ``local_rank`` of this host uses (they are shared round-robin)."""
    return local_rank % torch.cuda.device_count()


def default_backend(local_world: int) -> str:
    """``nccl`` when CUDA is available and each of the host's ``local_world`` processes has its own GPU, else gloo."""
    return "nccl" if torch.cuda.is_available() and local_world <= torch.cuda.device_count() else "gloo"


def join() -> Shard:
    """This process's Shard: the whole study without a launcher, else its rank in a (new) process group."""
    world = _environment_int("WORLD_SIZE", 1)
    if world <= 1:
        return Shard()
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; run the study in one process")
    local_rank = _environment_int("LOCAL_RANK", 0)
    start = not dist.is_initialized()
    if start:
        if torch.cuda.is_available():
            torch.cuda.set_device(local_gpu(local_rank))
        dist.init_process_group(default_backend(_environment_int("LOCAL_WORLD_SIZE", world)))
    group = dist.new_group(backend="gloo")
    return ProcessShard(dist.get_rank(), dist.get_world_size(), local_rank, group, start)


def leave(shard: Shard) -> None:
    """Tear down the process group a study started (nothing to do for one process)."""
    if isinstance(shard, ProcessShard) and dist.is_initialized():
        dist.destroy_process_group(shard.group)
        if shard.owns_group:
            dist.destroy_process_group()


def share(shard: Shard, value: Any) -> Any:
    """Rank 0's ``value`` on every rank (``value`` itself in one process)."""
    return shard.broadcast(value) if isinstance(shard, ProcessShard) else value


def local_device(shard: Shard, device: str) -> str:
    """The device this rank runs ``device`` on: ``auto``/``cuda`` become the rank's GPU under a launcher.

    Without CUDA ``device`` stays as it is: ``auto`` then means the CPU, and ``cuda`` fails to resolve with its
    one-line ConfigError.
    """
    if not isinstance(shard, ProcessShard) or device not in ("auto", "cuda") or not torch.cuda.is_available():
        return device
    return f"cuda:{local_gpu(shard.local_rank)}"
