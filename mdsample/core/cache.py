"""KV caching driven by the loop: Fast-dLLM's prefix and dual cache, for every rule and domain.

Why the loop drives it: whether a step may reuse keys and values depends on the loop's bookkeeping (which block each
row is in, how many steps since its cache was built), and rows move through their blocks independently. A denoiser
only offers the calls of ``CachingDenoiser`` (a full forward that stores keys/values, and a forward of a few query
positions against them); rules never see any of it.

Per row, as Fast-dLLM's ``generate_with_prefix_cache`` / ``generate_with_dual_cache`` behave:

* the first step of a block is a full forward whose logits drive that step and which stores every position's keys
  and values (a *refresh*); with ``refresh`` N > 0 a row also refreshes once N steps have passed since its last one
  (N = 1: every step is a full forward, i.e. the uncached loop);
* every other step computes only
  - ``prefix``: the active block and everything after it, attending to the stored prompt and finished blocks;
  - ``dual``: the loop's window, the active block, attending to the stored prefix and suffix (for a rule with
    history, the next block's distribution, which its first KL compares with, comes from one extra read-only call
    when the row's block advances: ``peek``; the window is two blocks instead where that call is not available:
    ``cache_refresh`` 1, or a denoiser without ``peek``);
  the computed positions' fresh keys/values replace the stored ones (Fast-dLLM's ``replace_position``);
* the answer slots of an early exit are read-only queries: their logits are computed, their keys/values not stored.

Per-row blocks: each row refreshes at its own block boundaries. A step where only some rows refresh makes two calls:
the cached call over all open rows (its results for the refreshing rows are discarded), then a full forward of the
refreshing rows, which overwrites their cache. Every row still costs one NFE, and no row's logits depend on which
other rows share its batch, so a batch gives the row-by-row result. Rows that finish are dropped from the cache
(``KVCache.keep``): its first rows are always the open rows, in order.

Each call runs through the StepRunner (core/capture.py) together with the statistics every rule reads, so that under
CUDA graphs one replay covers the denoiser and the statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mdsample.core.capture import StepRunner
from mdsample.core.choices import CACHE_MODES
from mdsample.core.denoiser import CachingDenoiser, Denoiser
from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError

Statistics = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]
"""``stats(window_logits) -> (probs, x0 or None, conf or None)``; may write into ``window_logits`` (mask token)."""


@dataclass
class KVCache:
    """Keys/values a CachingDenoiser stores per row; every tensor has the rows on dim 0 (``capacity`` of them).

    ``length`` is the canvas length. How positions are laid out is the denoiser's business, except that it keeps a
    spare position slot, index ``length``, where it writes the keys/values it is asked not to keep.
    """

    tensors: list[torch.Tensor]
    length: int

    @property
    def capacity(self) -> int:
        return self.tensors[0].shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors)

    def keep(self, rows: torch.Tensor) -> None:
        """Move rows ``rows`` (increasing) to the front, in place: the storage never moves (captured graphs read it)."""
        for t in self.tensors:
            t[: rows.numel()] = t[rows]


@dataclass
class StepLogits:
    """One step's logits and statistics for the open rows, in their order.

    ``window[n, W, V]``: the loop's window (mask token forbidden); ``answers[n, A, V]``: the early-exit answer slots
    (None without early exit); ``probs``/``x0``/``conf`` as StepStats computes them (x0 and conf None when the chooser
    draws at random: the loop draws outside the captured step).
    """

    window: torch.Tensor
    answers: torch.Tensor | None
    probs: torch.Tensor
    x0: torch.Tensor | None
    conf: torch.Tensor | None

    def merge(self, local: torch.Tensor, other: StepLogits) -> None:
        """Overwrite rows ``local`` with ``other``'s first rows (a mixed step's refreshing rows)."""
        for name in ("window", "answers", "probs", "x0", "conf"):
            mine = getattr(self, name)
            if mine is not None:
                mine[local] = getattr(other, name)[: local.numel()]


class StepForward:
    """The denoiser calls of one step for the open rows: a plain forward, or refresh / cached calls under a cache.

    ``window`` is the loop's window width (its positions arrive as ``idx`` every step); ``answer[B, A]`` the answer
    slots of an early exit (None without). ``stats`` computes the per-step statistics inside each call.
    ``storage(name, make)`` (KeptGraphs.storage) gives the KV cache a kept runner's graphs read, its contents stale
    (every row refreshes before a cached call reads it).
    """

    def __init__(
        self,
        denoiser: Denoiser,
        state: MaskedState,
        *,
        mode: str,
        refresh: int,
        window: int,
        block_length: int,
        answer: torch.Tensor | None,
        runner: StepRunner,
        stats: Statistics,
        storage: Callable[[str, Callable], KVCache] | None = None,
    ):
        if mode not in CACHE_MODES:
            raise ConfigError(f"decode.cache={mode!r} is unknown; choose one of: {', '.join(CACHE_MODES)}")
        if refresh < 0:
            raise ConfigError(f"decode.cache_refresh must be >= 0 (0: refresh only at block boundaries), got {refresh}")
        if mode != "none" and not isinstance(denoiser, CachingDenoiser):
            raise ConfigError(f"decode.cache={mode} needs a denoiser with a KV cache (new_cache / prefill / cached); "
                              f"{type(denoiser).__name__} has none: use decode.cache=none")
        self.denoiser, self.mode, self.refresh, self.runner, self.stats = denoiser, mode, refresh, runner, stats
        self.window, self.block_length = window, block_length
        self.batch, self.length, self.gen_start = state.batch, state.length, state.gen_start
        self.answer = answer
        device = state.tokens.device
        self.cache: KVCache | None = None
        if mode != "none":
            def make() -> KVCache:  # the last row takes padding
                return denoiser.new_cache(state.batch + 1, state.length, device)

            self.cache = make() if storage is None else storage("kv", make)
            self.cache_rows = torch.arange(state.batch)
            self.since = torch.zeros(state.batch, dtype=torch.long, device=device)
            self.block_at = torch.full((state.batch,), -1, dtype=torch.long, device=device)

    def due(self, block: torch.Tensor) -> torch.Tensor:
        """Bool [B]: rows whose next step must refresh (new block, or ``refresh`` steps since the last refresh)."""
        if self.cache is None:
            return torch.zeros_like(block, dtype=torch.bool)
        due = self.block_at != block
        return due | (self.since >= self.refresh) if self.refresh else due

    def __call__(
        self,
        tokens: torch.Tensor,
        conditioning: dict,
        *,
        rows: torch.Tensor,
        open_rows: torch.Tensor,
        idx: torch.Tensor,
        valid: torch.Tensor,
        due: torch.Tensor,
        due_host: torch.Tensor,
        first_block: int,
    ) -> StepLogits:
        """Logits of the open rows (``tokens[n, L]``, state rows ``rows`` on the device / ``open_rows`` on the host).

        ``idx``/``valid[n, W]``: the window's canvas columns and which are inside the canvas; ``due``: the [B] flags
        of ``due()`` (``due_host`` the open rows' flags on the host); ``first_block``: the lowest active block.
        """
        n = tokens.shape[0]
        answers = None if self.answer is None else self.answer[rows]
        if self.cache is None:
            return self._full(tokens, conditioning, idx, answers, None)
        if not torch.equal(self.cache_rows, open_rows):
            self.cache.keep(torch.searchsorted(self.cache_rows, open_rows).to(tokens.device))
            self.cache_rows = open_rows
        refreshing = due_host.nonzero().squeeze(1)
        if refreshing.numel() == n:
            out = self._full(tokens, conditioning, idx, answers, torch.arange(n, device=tokens.device))
        else:
            out = self._cached(tokens, conditioning, idx, valid, answers, first_block)
            if refreshing.numel():
                local = refreshing.to(tokens.device)
                part = {k: _rows(v, local, n) for k, v in conditioning.items()}
                sub = None if answers is None else answers[local]
                out.merge(local, self._full(tokens[local], part, idx[local], sub, local))
        refreshed = due[rows]
        self.since[rows] = torch.where(refreshed, 1, self.since[rows] + 1)
        block = (idx[:, 0] - self.gen_start) // self.block_length
        self.block_at[rows] = torch.where(refreshed, block, self.block_at[rows])
        return out

    def peek(self, canvas: torch.Tensor, columns: torch.Tensor, rows: torch.Tensor, conditioning: dict) -> torch.Tensor:
        """The step's statistics' probabilities ``[m, Q, V]`` (mask token forbidden) at canvas ``columns[m, Q]`` of
        state rows ``rows`` (on the host; each stepped in the last call, so each has a cache row), their tokens taken
        from ``canvas[m, L]``, against the rows' stored keys/values as they stand (CachingDenoiser's ``peek``).
        ``conditioning``: those rows'.

        When every open row peeks (always at batch 1), their next step refreshes all of them, which rewrites every
        key/value, so the peek need not be read-only: it is the step's own cached call (the same CUDA graph, no
        other to capture, no copy of the cache rows), whose queries' keys/values the refresh then overwrites.
        Otherwise it is a read-only call of the denoiser's ``peek`` through the step runner (padded to the step's
        batch buckets and captured when static: eager, a peek of an 8B model at batch 1 costs three captured ones).
        The logits are the same either way: the queries attend to their own fresh keys/values in both.
        """
        m = canvas.shape[0]
        if torch.equal(rows, self.cache_rows):
            local = rows.to(canvas.device)
            answers = None if self.answer is None else self.answer[local]
            valid = torch.ones_like(columns, dtype=torch.bool)
            return self._cached(canvas, conditioning, columns, valid, answers, 0).probs
        b = self.runner.batch(m, self.batch)
        local = torch.searchsorted(self.cache_rows, rows).to(canvas.device)
        inputs = {"tokens": canvas.gather(1, columns), "columns": columns, "rows": local,
                  **_tensors(conditioning, m)}
        inputs = {k: _pad(v, b) for k, v in inputs.items()}
        consts = _constants(conditioning, m)

        def peek(**inputs):
            return (self.stats(self.denoiser.peek(cache=self.cache, **inputs, **consts))[0],)

        return self.runner("peek", peek, inputs)[0][:m]

    def _full(
        self,
        tokens: torch.Tensor,
        conditioning: dict,
        idx: torch.Tensor,
        answers: torch.Tensor | None,
        cache_rows: torch.Tensor | None,
    ) -> StepLogits:
        """A full forward (storing the keys/values of cache rows ``cache_rows`` when given), gathered to the window."""
        n = tokens.shape[0]
        b = self.runner.batch(n, self.batch)
        columns = idx if answers is None else torch.cat([idx, answers], dim=1)
        inputs = {"tokens": tokens, "columns": columns, **_tensors(conditioning, n)}
        inputs = {k: _pad(v, b) for k, v in inputs.items()}
        consts = _constants(conditioning, n)
        if cache_rows is None:
            def call(tokens, columns, **cond):
                return self._gathered(self.denoiser(tokens, **cond, **consts), columns)

            return self._run("plain", call, inputs, n)
        inputs["cache_rows"] = _pad(cache_rows, b, fill=self.batch)

        def refresh(tokens, columns, cache_rows, **cond):
            return self._split(self.denoiser.prefill(tokens, self.cache, cache_rows, columns=columns, **cond,
                                                     **consts))

        return self._run("refresh", refresh, inputs, n)

    def _cached(
        self,
        tokens: torch.Tensor,
        conditioning: dict,
        idx: torch.Tensor,
        valid: torch.Tensor,
        answers: torch.Tensor | None,
        first_block: int,
    ) -> StepLogits:
        """Queries against the cache: the window, the answer slots (read-only), then the prefix mode's rest."""
        n, length = tokens.shape[0], self.length
        columns, slots = [idx], [torch.where(valid, idx, length)]
        if answers is not None:
            columns.append(answers)
            slots.append(torch.full_like(answers, length))
        first = self.gen_start + first_block * self.block_length
        extra = length - first - self.window if self.mode == "prefix" else 0
        if extra > 0:
            rest = idx[:, :1] + self.window + torch.arange(extra, device=idx.device)
            columns.append(rest.clamp_max(length - 1))
            slots.append(torch.where(rest < length, rest, length))
        columns, slots = torch.cat(columns, dim=1), torch.cat(slots, dim=1)
        outputs = self.window + (0 if answers is None else answers.shape[1])
        b = self.runner.batch(n, self.batch)
        inputs = {"tokens": tokens.gather(1, columns), "columns": columns, "slots": slots,
                  **_tensors(conditioning, n)}
        inputs = {k: _pad(v, b) for k, v in inputs.items()}
        consts = _constants(conditioning, n)

        def cached(tokens, columns, slots, **cond):
            logits = self.denoiser.cached(tokens, columns, slots, self.cache, outputs, **cond, **consts)
            return self._split(logits)

        return self._run(f"cached{columns.shape[1]}", cached, inputs, n)

    def _gathered(self, logits: torch.Tensor, columns: torch.Tensor) -> tuple:
        rows = torch.arange(columns.shape[0], device=columns.device).unsqueeze(1)
        return self._split(logits[rows, columns])

    def _split(self, logits: torch.Tensor) -> tuple:
        window = logits[:, : self.window]
        answers = logits[:, self.window :] if self.answer is not None else None
        return (window, answers, *self.stats(window))

    def _run(self, name: str, fn: Callable, inputs: dict, n: int) -> StepLogits:
        out = self.runner(name, fn, inputs)
        return StepLogits(*(None if t is None else t[:n] for t in out))


def _tensors(conditioning: dict, n: int) -> dict[str, torch.Tensor]:
    """The per-row conditioning tensors (first dimension = the rows of this call)."""
    return {k: v for k, v in conditioning.items() if torch.is_tensor(v) and v.shape[:1] == (n,)}


def _constants(conditioning: dict, n: int) -> dict:
    """Conditioning values that are the same for every row (kept out of the static inputs)."""
    return {k: v for k, v in conditioning.items() if not (torch.is_tensor(v) and v.shape[:1] == (n,))}


def _rows(value, local: torch.Tensor, n: int):
    return value[local] if torch.is_tensor(value) and value.shape[:1] == (n,) else value


def _pad(x: torch.Tensor, b: int, fill: int | None = None) -> torch.Tensor:
    """``x`` with ``b - len(x)`` padding rows appended: copies of its first row, or ``fill`` when given."""
    if x.shape[0] == b:
        return x
    if fill is not None:
        return torch.cat([x, x.new_full((b - x.shape[0], *x.shape[1:]), fill)])
    return torch.cat([x, x[:1].expand(b - x.shape[0], *x.shape[1:])])
