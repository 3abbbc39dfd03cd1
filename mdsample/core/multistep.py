"""Several decode steps per host sync (``decode.sync_every``): the loop reads its bookkeeping back once per chunk.

Why: decode() learns on the host which rows are still open (and, under a KV cache, which must refresh) before it
prepares a step's denoiser call. That read is a device sync: at batch 1 on an H200 the GPU idles at it and between
the launches that follow, ~2.3 ms of a 7-10 ms step. With ``sync_every`` N the loop syncs once, then issues up to N
steps back to back, deciding everything else on the device, so the host enqueues step s+1 while the GPU still runs
step s and the GPU never waits for Python.

Inside a chunk (the steps between two syncs) the row set is the one read at the chunk's sync and stays fixed, so
every call keeps its shapes (and its CUDA graph, core/capture.py). Each step computes, on the device, which of those
rows are *live*: not finished (no masked position left, or exited early) and, under a KV cache, not due for a
refresh. A row that is not live makes a no-op step: it is in the batch, but it has no active position, commits
nothing, keeps its tokens, its KL history, its block step and its NFE (so NFE stays exact per row); its outputs are
discarded. Block advance is the device bookkeeping decode() always used (``_Progress``): a row moving on to its next
block reads its new window at the next step without the host knowing. A refresh cannot be decided on the device (the
call kind, full forward or cached queries, is chosen on the host), so a row whose block ends inside a chunk pauses
until the next sync, whose first step refreshes it: rows are independent, so pausing a row changes none of its
tokens. Nothing in a chunk reads the device: rules get a host bound of ``k`` (``StepContext.k_max``) instead of
reading ``k.max()``, and the loop's window, statistics and commit are tensor operations.

Why N replays queued back to back rather than one CUDA graph holding N whole steps: the captured call (core/capture.py)
covers the denoiser and the statistics, the bulk of a step's kernels; the rule, the token draw and the commit run
eagerly because they draw from the caller's torch.Generator (a graph would need it registered and fixed draw shapes
per bucket) and rules are plugins whose kernels may not be capturable. Once the loop no longer syncs, those few
eager launches overlap the previous step's replay, which is what the sync prevented; ms per step against N is the
measure (benchmarks: ``decode.sync_every=N``).

The chunk plan (``Chunks``). For a rule that commits exactly ``k`` positions per row with the linear schedule
(``Rule.fixed_count``: confidence, margin, entropy, random), the host replays the schedule and the block advance on
the counts read at the sync: each step's ``k_max`` is then the very ``k.max()`` the one-step loop reads, so
``torch.topk`` runs with the same k and breaks exact ties the same way, and the chunk ends exactly when the last row
finishes (or, under a cache, at the first block end, so no row pauses). For other rules the chunk's first step still
gets the exact ``k.max()`` (its counts are the synced ones, unless early exit, answer-first order or editing change
them; the cosine schedule's ratios are one float64 table for host and device, core/schedule.py), later steps the
block length as their bound, and a chunk is at most as long as some row may still need (each live step commits at
least one position per row and a block runs at most its steps) and, under a cache, as the earliest block end allows;
an adaptive rule may still issue up to N - 1 no-op steps at the end of a decode, and rows may pause under a cache.
Chunk ends never change tokens, only the work done.

The same foresight serves ``sync_every`` 1: there every chunk is one step, and handing top-k its ``k.max()`` from the
sync's copy spares the plain loop and every top-k rule a second device sync per step (about 0.65 ms of a 7.3 ms
batch-1 step of the LLaDA-8B shape on an H200, BENCHMARKS.md, "Session 9").

Exactness: every row gets the tokens, NFE and commit steps of ``sync_every`` 1, with two batch-level exceptions.
Random draws (sampled tokens, the random and MaskGIT rules, uniform noise) are made for the chunk's rows, so they
equal the one-step loop's while every row of the chunk is live (always at batch 1 without a cache, and for
fixed-count rules whose rows finish together); after a row finished or paused inside a chunk a seeded run is still
reproducible, but draws land on other rows, and no-op steps advance the generator. And where the bound replaces
``k.max()`` (KLASS's top-k fallback, threshold with ``floor="schedule"``, MaskGIT), top-k may order positions whose
scores tie exactly at the k-th place differently (``topk(block_length)`` then each row's first k). All of this
assumes, as decode()'s batch-equals-row-by-row promise does, that a row's logits do not depend on its batch: a chunk
keeps a finished row in the batch (and the prefix cache's query columns of the chunk's first step) where the
one-step loop would shrink the call, so kernels whose last bits depend on the shape (bf16 GEMMs on a GPU) can differ
at batch > 1; at batch 1 every call has the one-step loop's shapes. Wall-clock seconds are charged per chunk to its
rows; ``DecodeResult.steps`` counts batch steps, no-op ones included.

KLASS under the dual cache (core/loop.py, step 1): a row whose block advanced is due for a refresh, so it pauses until
the next sync, and its peek runs right after that sync, as it does with N = 1 (where that sync comes at once): the flag
that asks for it is read with the sync's other rows (no extra sync), and the row's no-op steps leave the keys/values
the peek reads as the advancing step left them (they write only the new block's, which the peek's own queries
replace). So the one-block window serves every N, with the same tokens, NFE and commit steps.

The default, ``sync_every="auto"`` (``auto_sync_every``), takes N = 8 only where the exceptions above cannot arise:
on CUDA, for a ``device_only`` rule with an exact plan, under a KV cache (an exact chunk ends at the first block end,
so no row finishes or pauses inside it) or at batch 1; elsewhere it is 1. That holds for block diffusion's
per-canvas decodes as well (core/blocks.py), which are ordinary decodes of one canvas: only an explicit N > 1 is
refused for a block-diffusion model, whose outer loop syncs per canvas anyway.

Features decided on the host per step refuse N > 1 with a one-line ConfigError: post-mask editing (a row reopens
for post-mask steps by counting edits, and it runs inside block diffusion's per-canvas loop), block-diffusion
models (their outer loop syncs per canvas) and rules that do not declare ``device_only``.
"""

from __future__ import annotations

import torch

from mdsample.core.rules.base import Rule
from mdsample.core.schedule import Blocks, tokens_this_step
from mdsample.errors import ConfigError

AUTO_EVERY = 8
"""The N that ``sync_every="auto"`` picks: the knee of ms per step against N (BENCHMARKS.md, "decode.sync_every":
N = 4 is 2% slower at batch 1, N = 16 no faster)."""


def auto_sync_every(rule: Rule, *, exact: bool, cached: bool, batch: int, device: torch.device) -> int:
    """``sync_every="auto"``: ``AUTO_EVERY`` where several steps per sync provably change nothing, else 1.

    That is on CUDA (on the CPU nothing runs ahead of the host, so a sync costs nothing to wait for), for a
    ``device_only`` rule whose chunks the host plans exactly (``Chunks``' ``exact``: a fixed-count rule with the linear
    schedule, no early exit, answer-first order, editing or periodic refresh), and where every row of a chunk stays live
    to its end: under a cache an exact chunk ends at the first block end, and at batch 1 the chunk ends with the row.
    Then every step makes the one-step loop's calls on the one-step loop's rows, so the tokens, NFE, commit steps and
    random draws are the same bit for bit (the module's docstring lists what may differ elsewhere), and the GPU no
    longer waits for the host between steps: 5% of a batch-1 step of the LLaDA-8B shape (BENCHMARKS.md, "Session 10").
    """
    every = exact and getattr(rule, "device_only", False) and device.type == "cuda" and (cached or batch == 1)
    return AUTO_EVERY if every else 1


def check_sync_every(sync_every: int | str, rule: Rule, *, editing: bool = False,
                     block_model: bool = False) -> int | str:
    """``sync_every`` (an integer >= 1, or "auto": ``auto_sync_every``) validated against the decode's other
    features (one-line ConfigErrors)."""
    if sync_every == "auto":
        return sync_every
    if isinstance(sync_every, bool) or not isinstance(sync_every, int) or sync_every < 1:
        raise ConfigError(f"decode.sync_every must be auto or an integer >= 1 (1: sync every step), "
                          f"got {sync_every!r}")
    if sync_every == 1:
        return sync_every
    if block_model:
        raise ConfigError("decode.sync_every > 1 does not apply to a block-diffusion model (its outer loop syncs per "
                          "canvas): use decode.sync_every=1")
    if editing:
        raise ConfigError("post-mask editing decides on the host when a row's post steps end: use "
                          "decode.sync_every=1 with editing")
    if not getattr(rule, "device_only", False):
        raise ConfigError(f"rule {getattr(rule, 'name', type(rule).__name__)!r} does not declare device_only "
                          "selection (it may read the device each step): use decode.sync_every=1")
    return sync_every


class Chunks:
    """Plans the chunks of a decode: what the sync reads beyond the loop's own rows, how many steps follow, and the
    host bound of k (``StepContext.k_max``) each of them hands the rule.

    ``blocks``: the decode's layout (schedule.Blocks); ``cached``: a KV cache is in use; ``exact``: every step's
    counts can be foreseen on the host (a rule that commits exactly ``ctx.k`` positions per row with the linear
    schedule, no early exit, no answer-first order, no periodic cache refresh). Then the plan replays the loop's
    schedule for the chunk on the synced counts, and every step calls top-k with the very ``k.max()`` the one-step
    loop reads (identical ties), and the chunk ends exactly when the last row finishes or, under a cache, when a
    row's block ends. Otherwise, with ``foresee`` (the first step's counts are the synced ones), the first step gets
    its exact ``k.max()`` and the others the block length as their bound; without, every step takes the block length
    (or, at ``sync_every`` 1, None: the rule reads ``k.max()`` itself).
    """

    def __init__(self, sync_every: int, blocks: Blocks, cached: bool, exact: bool, foresee: bool = False,
                 schedule: str = "linear"):
        self.every, self.blocks, self.cached, self.exact = sync_every, blocks, cached, exact
        self.foresee, self.schedule = foresee or exact, schedule

    def extra(self, state, progress) -> list[torch.Tensor]:
        """The per-row values [B] the sync also reads when chunks are longer than one step, or when the first
        step's counts can be foreseen: the block step, the masked count at the block's start, then the masked count
        of every block (``progress``: the loop's _Progress)."""
        if self.every == 1 and not self.foresee:
            return []
        return [progress.step, progress.n0, *progress.block_counts(state).T]

    def plan(self, host: torch.Tensor, open_rows: torch.Tensor) -> list[int | None]:
        """``k_max`` for each step of the chunk that starts now (its length is the chunk's), from the synced rows
        ``host`` (the loop's rows: open, due, block; then ``extra``'s). With ``foresee`` the chunk's first step
        gets the very ``k.max()`` the loop computes (the synced counts are its counts), so that even a one-step
        chunk hands top-k its k without a second device sync; None lets the rule read ``k.max()`` itself."""
        if self.every == 1 and not self.foresee:
            return [None]
        block, step, n0 = (host[i][open_rows] for i in (2, 3, 4))
        counts = host[5:].T[open_rows]
        if self.exact:
            return self._replay(block, step, n0, counts.clone(), self.every) or [None]
        first = self._replay(block, step, n0, counts.clone(), 1) if self.foresee else []
        if self.every == 1:
            return first or [None]
        steps = self.blocks.steps
        need = torch.minimum(counts.sum(dim=1), (self.blocks.count - block) * steps - step)
        size = min(self.every, int(need.max()))
        if self.cached:
            here = counts.gather(1, block.unsqueeze(1)).squeeze(1)
            size = min(size, int(torch.minimum(here, steps - step).min()))
        return (first + [self.blocks.length] * max(size, 1))[: max(size, 1)]

    def _replay(self, block: torch.Tensor, step: torch.Tensor, n0: torch.Tensor, counts: torch.Tensor,
                most: int) -> list[int]:
        """The loop's schedule and block advance (_Progress) for up to ``most`` steps, on the host (past the first
        step only for rules that commit exactly k with the linear schedule)."""
        blocks = self.blocks
        left = counts.gather(1, block.unsqueeze(1)).squeeze(1)
        plan: list[int] = []
        while len(plan) < most and bool((left > 0).any()):
            live = left > 0
            spread = n0 if blocks.spread == "masked" else torch.full_like(n0, blocks.length)
            k = torch.where(live, tokens_this_step(self.schedule, spread, left, step, blocks.steps), 0)
            plan.append(int(k.max()))
            left, step = left - k, step + live.long()
            counts.scatter_(1, block.unsqueeze(1), left.unsqueeze(1))
            ended = live & (left == 0)
            if self.cached and bool(ended.any()):
                break  # that row's next step refreshes its cache: the next chunk starts with it
            new = (counts > 0).long().argmax(dim=1)
            fresh = counts.gather(1, new.unsqueeze(1)).squeeze(1)
            block, n0 = torch.where(ended, new, block), torch.where(ended, fresh, n0)
            left, step = torch.where(ended, fresh, left), torch.where(ended, 0, step)
        return plan
