"""Which device and process group each process of a sharded study takes on a GPU host, simulated on the CPU.

A study under torchrun once gave rank 1 ``cuda:1`` on a host with one visible GPU ("invalid device ordinal"),
even when the study ran on the CPU. Here torch.cuda is told how many GPUs there are, and the process group is
recorded instead of started, so the choice is checked without a GPU or a second process.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from mdsample.api import Shard
from mdsample.errors import ConfigError
from mdsample.study import distributed
from mdsample.study.distributed import ProcessShard, join, local_device


def visible_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


@pytest.mark.parametrize(("gpus", "expected"), [(1, "cuda:0"), (2, "cuda:1"), (4, "cuda:1")])
def test_ranks_share_the_visible_gpus(monkeypatch, gpus, expected):
    visible_gpus(monkeypatch, gpus)
    second = ProcessShard(rank=1, world=2, local_rank=1)
    assert local_device(second, "auto") == local_device(second, "cuda") == expected
    assert local_device(ProcessShard(rank=0, world=2, local_rank=0), "auto") == "cuda:0"


def test_named_devices_and_one_process_keep_their_device(monkeypatch):
    visible_gpus(monkeypatch, 1)
    second = ProcessShard(rank=1, world=2, local_rank=1)
    assert local_device(second, "cpu") == "cpu" and local_device(second, "cuda:0") == "cuda:0"
    assert local_device(Shard(), "auto") == "auto"


def test_without_cuda_auto_stays_on_the_cpu_and_cuda_fails_in_one_line(monkeypatch):
    from mdsample.api import resolve_device

    visible_gpus(monkeypatch, 0)
    second = ProcessShard(rank=1, world=2, local_rank=1)
    assert resolve_device(local_device(second, "auto")).type == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device(local_device(second, "cuda"))


@pytest.fixture
def launched(monkeypatch):
    """Rank 1 of 2 on this host as torchrun starts it; returns what join() asked of torch.cuda and torch.distributed."""
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    asked: dict[str, object] = {}
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: asked.setdefault("gpu", index))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: asked.setdefault("backend", backend))
    monkeypatch.setattr(dist, "new_group", lambda backend: f"{backend} group")
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    return asked


@pytest.mark.parametrize(("gpus", "gpu", "backend"), [(1, 0, "gloo"), (2, 1, "nccl"), (0, None, "gloo")])
def test_join_picks_a_visible_gpu_and_a_backend_the_host_can_run(monkeypatch, launched, gpus, gpu, backend):
    visible_gpus(monkeypatch, gpus)
    shard = join()
    assert launched.get("gpu") == gpu and launched["backend"] == backend
    assert (shard.rank, shard.world, shard.local_rank, shard.group, shard.owns_group) == (1, 2, 1, "gloo group", True)


def test_backend_counts_the_processes_of_this_host_only(monkeypatch):
    visible_gpus(monkeypatch, 2)
    assert distributed.default_backend(2) == "nccl" and distributed.default_backend(3) == "gloo"
