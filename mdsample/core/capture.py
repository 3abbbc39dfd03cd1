"""A captured step: the denoiser call and the per-step statistics replayed as one CUDA graph.

Why: at batch 1 a step of a large model costs a few milliseconds of GPU time, but its denoiser call alone launches
hundreds of kernels (a dozen per layer) and the statistics a dozen more; launched one by one from Python after the
loop's per-step sync, they leave the GPU waiting. A CUDA graph replays all of them with one launch.

Graphs need static shapes and static memory, so under capture:

* batch sizes are padded up to power-of-two buckets (capped at the decode's batch): rows that finish shrink the
  batch, and each bucket gets its own graph, at most log2(B) + 2 per call kind, instead of one per batch size;
  the padding rows are copies of the first row and their outputs are dropped;
* every input is copied into the graph's own buffers before a replay, and the outputs are the graph's buffers, valid
  until its next replay (the loop consumes them within the step);
* a KV cache keeps its storage for the whole decode (``KVCache.keep`` compacts in place), and a capturable
  denoiser must not reallocate anything its calls read (a table grown on demand) once a call has been captured.

Kept graphs (``KeptGraphs``): a run decodes many batches of one shape with one denoiser; the graphs and the storage
they read (the KV cache) can outlive a decode, so that only the run's first decode of a shape pays the capture.

Modes (``decode.capture``): ``off`` runs eagerly on exact shapes; ``on`` runs the static-shape step and captures
it where CUDA graphs exist, falling back to running the same static step eagerly where they do not (CPU) or where
capture fails (a warning says why); ``auto`` is ``on`` for a denoiser that declares ``capturable = True`` on a
CUDA device, else ``off``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mdsample.core.choices import CAPTURE_MODES
from mdsample.errors import ConfigError


def bucket(n: int, cap: int) -> int:
    """The smallest power of two >= ``n``, at most ``cap``."""
    return min(1 << max(n - 1, 0).bit_length(), cap)


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    inputs: dict[str, torch.Tensor]
    outputs: tuple


class StepRunner:
    """Runs a step function ``fn(**inputs) -> tuple of tensors (or None)`` on static shapes when capturing.

    ``static``: pad batches to buckets (``batch``); ``graphs``: capture one CUDA graph per call name and input
    shapes, then replay it. ``captured`` counts the graphs made and ``capture_s`` the wall-clock seconds making them
    took (warm-up run and capture, between two device syncs): a decode pays it once per graph, which is what a short
    decode's time per step carries beyond its steps (benchmarks/rule_step.py reports it).
    """

    def __init__(self, mode: str, device: torch.device, capturable: bool = False):
        if mode not in CAPTURE_MODES:
            raise ConfigError(f"decode.capture={mode!r} is unknown; choose one of: {', '.join(CAPTURE_MODES)}")
        cuda = device.type == "cuda"
        self.static = mode == "on" or (mode == "auto" and cuda and capturable)
        self.graphs = self.static and cuda
        self.captured = 0
        self.capture_s = 0.0
        self._entries: dict[tuple, _Graph] = {}

    def batch(self, n: int, cap: int) -> int:
        """The batch size a call for ``n`` rows runs at (a bucket when static, else ``n``)."""
        return bucket(n, cap) if self.static else n

    def __call__(self, name: str, fn: Callable[..., tuple], inputs: dict[str, torch.Tensor]) -> tuple:
        if not self.graphs:
            return fn(**inputs)
        key = (name, *((k, tuple(v.shape), v.dtype) for k, v in inputs.items()))
        entry = self._entries.get(key)
        if entry is None:
            try:
                entry = self._capture(fn, inputs)
            except RuntimeError as exc:  # e.g. an operation a graph cannot hold: run eagerly from now on
                warnings.warn(f"CUDA graph capture failed, decoding eagerly: {exc}", RuntimeWarning, stacklevel=2)
                self.graphs = False
                return fn(**inputs)
            self._entries[key] = entry
        for k, v in inputs.items():
            entry.inputs[k].copy_(v)
        entry.graph.replay()
        return entry.outputs

    def _capture(self, fn: Callable[..., tuple], inputs: dict[str, torch.Tensor]) -> _Graph:
        """Warm ``fn`` up on a side stream (lazy initialisation must not be captured), then capture it.

        The step functions are idempotent on their inputs (a cache write stores the same values again), so the
        warm-up run and the replays may repeat them. Each graph keeps its own memory pool: a mixed step replays two
        graphs and reads both outputs, which a shared pool could place in the same memory.
        """
        torch.cuda.synchronize()
        start = time.perf_counter()
        static = {k: v.clone() for k, v in inputs.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn(**static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = fn(**static)
        torch.cuda.synchronize()
        self.captured += 1
        self.capture_s += time.perf_counter() - start
        return _Graph(graph, static, outputs)


class KeptGraphs:
    """One decode's StepRunner (its CUDA graphs) and the storage they read, kept for the next decode of the same kind.

    Why: capturing costs 70-90 ms per decode of an 8B model at batch 1 (0.3 ms of a 5.7 ms step over 256 steps) and
    100-230 ms at batch 8 (BENCHMARKS.md, "Session 10"), while a run decodes batch after batch of one shape with one
    denoiser. A graph replays fixed kernels on fixed memory, so it stays valid for a later decode that would capture
    the same kernels on the same memory; ``key`` stands for that: the denoiser and the addresses of its tensors
    (``memory_of``), the shapes, and every setting the captured calls read. A key of None (a decode whose calls
    read something the key cannot name) keeps nothing.

    One slot: a decode with another key first releases what is kept, so a run holds at most one decode's graphs and
    cache between its decodes, as a decode does while it runs. The kept storage's contents are stale, which is safe
    because the loop refreshes a KV cache row before any cached call reads it. Only a static step keeps anything
    (on the CPU, ``capture=on``: its storage, which tests use to check that stale contents change no token).

    Not in the key: process-wide kernel choices (the BLAS library, an SDPA backend context, autocast). A graph
    replays the kernels chosen when it was captured, so whoever shares a keeper keeps those settings fixed between
    its decodes, as a run does.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._runner: StepRunner | None = None
        self._storage: dict[str, Any] = {}

    def runner(self, key: tuple | None, mode: str, device: torch.device, capturable: bool) -> StepRunner:
        """The kept runner when ``key`` matches the last decode's, else a new one (kept in its place if static)."""
        if key is not None and key == self._key and self._runner is not None:
            return self._runner
        self.release()
        runner = StepRunner(mode, device, capturable)
        if key is not None and runner.static:
            self._key, self._runner = key, runner
        return runner

    def storage(self, name: str, make: Callable[[], Any]) -> Any:
        """Storage the kept runner's graphs read, made by ``make`` once per key (every time when nothing is kept)."""
        if self._runner is None:
            return make()
        if name not in self._storage:
            self._storage[name] = make()
        return self._storage[name]

    def release(self) -> None:
        """Drop the kept graphs and storage (their memory returns to PyTorch's allocator)."""
        self._key, self._runner, self._storage = None, None, {}


def memory_of(denoiser: object) -> tuple:
    """What a graph of a denoiser's calls depends on inside the denoiser: the address and dtype of every tensor of the
    modules it is or holds (found through its attributes, a few holders deep: an adapter wrapping a text model
    wrapping the module; moved, cast or reloaded weights change it) and whether each runs its compiled forward
    (``decode.compile``, a ``compiled`` attribute), which captures other kernels."""
    held: list = []
    seen: set[int] = set()

    def visit(value: object, depth: int) -> None:
        if id(value) in seen or depth > 3:
            return
        seen.add(id(value))
        if isinstance(value, torch.nn.Module):
            tensors = (*value.parameters(), *value.buffers())
            held.extend([getattr(value, "compiled", None), *((t.data_ptr(), t.dtype) for t in tensors)])
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            for child in vars(value).values():
                visit(child, depth + 1)

    visit(denoiser, 0)
    return tuple(held)
