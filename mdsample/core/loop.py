"""decode(): the one iteration manager every rule and domain goes through.

Per step, for the rows that are not finished (finished rows are dropped from the denoiser call and cost nothing):
1. find the open rows with the step's one host sync (with ``sync_every`` N, once per N steps: between syncs the
   rows' completion and block advance are decided on the device, core/multistep.py), and each row's window: its
   active block (the first block that still holds a masked position), plus the next block for rules with history
   (KLASS's first KL in a block compares with the distribution of the step before the block began), except under
   the dual cache: there the window is the active block, and right after the sync the rows whose block advanced by
   one at their last step make one extra read-only cached call of their new block (a *peek*, ``_peek``), whose
   distribution takes the next-block half's place; it costs one NFE per row and block advance;
2. get the window's logits (and the answer slots' for early exit) from the denoiser (core/cache.py): a full forward,
   or under a KV cache only the window against the stored keys/values, refreshed at each row's block boundaries;
   conditioning tensors follow the row selection;
3. in the same (possibly captured, core/capture.py) call, forbid the mask token as a candidate (committing it would
   undo progress), choose candidate tokens (TokenChooser; one that draws runs after the call, on the caller's
   generator) and compute the probabilities and confidences; other statistics follow lazily (StepStats, in
   ``stats_dtype``);
4. for rules with history, update the per-position KL history and keep log(p + eps) for the next step, only for
   the window (ALGORITHMS.md, "Cost"; one fused pass on CUDA, core/kl_history.py), shifting it when a row's block
   advances (a one-block window starts afresh, and the peek then fills in the previous distribution);
5. ask the rule which positions to commit (with answer-first ordering, only among the answer slots while any is
   masked), write their tokens (and, with post-mask editing, replace committed tokens
   the model now contradicts confidently), record the step and the NFE; under uniform corruption re-draw the noise of
   the positions still uncommitted;
6. with answer-block early exit (core/infill.py), finish the rows whose answer slots are settled.
Rows advance through their blocks independently, so a batch gives exactly the row-by-row result.

"Masked" means "not yet committed" throughout (MaskedState.masked): the same code serves absorbing and uniform
corruption, and a denoiser that declares ``self_conditioning = True`` gets the previous step's logits back as the
``self_conditioning`` conditioning tensor (None-free: absent at a canvas's first step).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mdsample.core.cache import Statistics, StepForward
from mdsample.core.callbacks import Callback
from mdsample.core.capture import KeptGraphs, StepRunner, memory_of
from mdsample.core.choices import CONFIDENCES
from mdsample.core.denoiser import Denoiser
from mdsample.core.infill import EarlyExit
from mdsample.core.kl_history import KLHistory
from mdsample.core.multistep import Chunks, auto_sync_every, check_sync_every
from mdsample.core.rules.base import Rule, StepContext, ensure_progress
from mdsample.core.schedule import Blocks, BlockSchedule, tokens_this_step
from mdsample.core.state import MaskedState, noise
from mdsample.core.stats import StepStats
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError


@dataclass
class DecodeResult:
    """The finished canvases and what they cost: NFE and wall-clock seconds per row, commit step per position, how
    many CUDA graphs this decode made (0: it ran eagerly, or replayed kept ones) and the seconds making them took
    (part of ``wall_s``), and how many times the loop read the device's bookkeeping back to the host
    (core/multistep.py).
    ``steps`` counts the batch steps issued, no-op ones included."""

    tokens: torch.Tensor
    nfe: torch.Tensor
    wall_s: torch.Tensor
    commit_step: torch.Tensor
    steps: int
    state: MaskedState
    graphs: int = 0
    syncs: int = 0
    capture_s: float = 0.0


class _Progress:
    """Per-row block bookkeeping: active block, step inside it, masked count at its start."""

    def __init__(self, state: MaskedState, blocks: Blocks):
        self.blocks = blocks
        counts = self.block_counts(state)
        self.block = _first_nonzero(counts)
        self.step = torch.zeros_like(self.block)
        self.n0 = counts.gather(1, self.block.unsqueeze(1)).squeeze(1)

    def block_counts(self, state: MaskedState) -> torch.Tensor:
        gen = state.masked[:, state.gen_start :]
        return gen.view(state.batch, self.blocks.count, self.blocks.length).sum(dim=-1)

    def advance(self, state: MaskedState, rows: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
        """Step the given rows (only the ``live`` ones when given: the others made a no-op step and did not change);
        returns, per row, how far its block moved (0 when it stays)."""
        counts = self.block_counts(state)
        new_block = _first_nonzero(counts)
        moved = torch.zeros_like(self.block)
        moved[rows] = (new_block - self.block)[rows]
        stays = moved == 0
        self.step[rows] += 1 if live is None else live.long()
        self.step = torch.where(stays, self.step, torch.zeros_like(self.step))
        self.n0 = torch.where(stays, self.n0, counts.gather(1, new_block.unsqueeze(1)).squeeze(1))
        self.block = torch.where(stays, self.block, new_block)
        return moved


def _first_nonzero(counts: torch.Tensor) -> torch.Tensor:
    """Index of the first block with a masked position (0 for rows with none; those rows are finished)."""
    return (counts > 0).long().argmax(dim=1)


@dataclass(frozen=True)
class Editing:
    """Post-mask editing (LLaDA2.1): at every step a committed, non-frozen position of the active block whose
    proposed token differs from its own and has confidence > ``threshold`` takes the proposed token; once the block
    has no masked position left the row keeps stepping while such edits happen, at most ``max_post_steps`` + 1
    times (diffusers' LLaDA2Pipeline counts the same way). Any rule can be combined with it."""

    threshold: float
    max_post_steps: int = 16

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise ConfigError(f"decode.editing_threshold must be > 0 to edit (got {self.threshold}); leave it unset "
                              "to disable editing")
        if self.max_post_steps < 0:
            raise ConfigError(f"decode.max_post_steps must be >= 0, got {self.max_post_steps}")


class _EditPhase:
    """Per-row post-mask editing state: post steps taken and whether the row's block is still open for edits."""

    def __init__(self, editing: Editing, batch: int, steps: int, device: torch.device):
        self.editing, self.steps = editing, steps
        self.post = torch.zeros(batch, dtype=torch.long, device=device)
        self.open = torch.zeros(batch, dtype=torch.bool, device=device)

    def edits(self, stats: StepStats, x0: torch.Tensor, tokens: torch.Tensor, editable: torch.Tensor) -> torch.Tensor:
        return editable & (x0 != tokens) & (stats.conf > self.editing.threshold)

    def update(self, rows: torch.Tensor, had_masks: torch.Tensor, step: torch.Tensor, edited: torch.Tensor) -> None:
        """After a step: a row that still had masks stays open while its block has steps left; a row in its post
        phase stays open while it edits and has post steps left."""
        post = self.post[rows] + (~had_masks).long()
        self.post[rows] = post
        self.open[rows] = torch.where(had_masks, step + 1 < self.steps,
                                      edited.any(dim=1) & (post <= self.editing.max_post_steps))


def _subset(conditioning: dict[str, torch.Tensor], rows: torch.Tensor, batch: int, full: bool) -> dict:
    if full:
        return conditioning
    return {k: v[rows] if torch.is_tensor(v) and v.shape[:1] == (batch,) else v for k, v in conditioning.items()}


def _statistics(forbid: int | None, chooser: TokenChooser, dtype: torch.dtype, confidence: str) -> Statistics:
    """The statistics computed inside each (possibly captured) denoiser call: p, and x0 / conf unless x0 is drawn.

    ``forbid`` is the mask id of an absorbing canvas (never a candidate token), None under uniform corruption.
    A drawing chooser takes the caller's generator, which stays outside the captured step, so it runs afterwards.
    """
    deterministic = getattr(chooser, "temperature", None) == 0

    def stats(window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        if forbid is not None and 0 <= forbid < window.shape[-1]:
            window[..., forbid] = float("-inf")
        x0 = chooser(window) if deterministic else None
        computed = StepStats(window, x0, dtype, confidence)
        return computed.probs, x0, None if x0 is None else computed.conf

    return stats


def _prefilled(stats: StepStats, **values: torch.Tensor | None) -> StepStats:
    """``stats`` with statistics computed in the step call filled in: a cached_property keeps its value in the
    instance dict, so the rule reads these instead of computing them again."""
    vars(stats).update({k: v for k, v in values.items() if v is not None})
    return stats


def _exit_early(
    early_exit: EarlyExit,
    local: EarlyExit,
    answers: torch.Tensor,
    updated: torch.Tensor,
    rows: torch.Tensor,
    mask_id: int,
    chooser: TokenChooser,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """EarlyExit.apply on the answer slots' logits ``answers[n, A, V]`` alone (a cached step computes no others).

    It runs on a compact canvas: the answer slots, then one sentinel column that holds the mask token exactly when
    the row has masked positions elsewhere, which is all apply needs to tell an exited row from a finished one.
    ``local`` is an EarlyExit whose answer slots are that canvas's first A columns.
    """
    cols = early_exit.answer[rows]
    elsewhere = (updated == mask_id).scatter(1, cols, False).any(dim=1, keepdim=True)
    sentinel = torch.where(elsewhere, mask_id, mask_id + 1)
    compact = torch.cat([updated.gather(1, cols), sentinel], dim=1)
    exits, filled = local.apply(answers, compact, rows, mask_id, chooser, generator)
    return exits, updated.scatter(1, cols, filled[:, :-1])


@torch.no_grad()
def decode(
    denoiser: Denoiser,
    state: MaskedState,
    rule: Rule,
    *,
    schedule: BlockSchedule | None = None,
    chooser: TokenChooser | None = None,
    conditioning: dict[str, torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    stats_dtype: torch.dtype = torch.float32,
    confidence: str = "drawn",
    callbacks: Sequence[Callback] = (),
    early_exit: EarlyExit | None = None,
    cache: str = "none",
    cache_refresh: int = 0,
    capture: str = "auto",
    editing: Editing | None = None,
    answer_first: torch.Tensor | None = None,
    sync_every: int | str = "auto",
    graphs: KeptGraphs | None = None,
) -> DecodeResult:
    """Fill every masked position of ``state`` (in place) with ``rule`` choosing positions and ``chooser`` tokens.

    ``confidence`` says what the confidence statistic scores (stats.CONFIDENCES): the drawn token, as the
    reference loops do, or the distribution's mode. ``early_exit`` stops a row once its answer slots are settled;
    such a row is finished with its unneeded reasoning slots still masked (``state.exited``). ``cache`` (none, prefix,
    dual) reuses attention keys/values of a CachingDenoiser, refreshed at each row's block boundaries and every
    ``cache_refresh`` steps (0: only there); see core/cache.py. ``capture`` (auto, on, off) runs each step's
    denoiser call and statistics as a CUDA graph; see core/capture.py. ``editing`` turns on post-mask editing
    (Editing); it needs one block per decode, as block diffusion gives each canvas (core/blocks.py).
    Under the dual cache a rule with history spends one more NFE per row and block advance (its peek, step 1 above).
    ``answer_first[B, A]`` (answer-slot positions) decodes those positions before any other: while a row has one of
    them masked, no other position is a candidate for its rule (the answer is committed before any reasoning, the
    ablation of reasoning-as-infilling); it needs one block. ``sync_every`` N > 1 reads the loop's bookkeeping
    back to the host once per N steps instead of every step, with the same tokens and NFE (core/multistep.py);
    "auto" picks N > 1 only where that changes nothing at all (multistep.auto_sync_every), else 1. ``graphs``
    (core/capture.py KeptGraphs) keeps the captured step's graphs and KV cache for the next decode of the same kind.
    """
    if confidence not in CONFIDENCES:
        raise ConfigError(f"decode.confidence={confidence!r} is unknown; choose one of: {', '.join(CONFIDENCES)}")
    block_model = hasattr(denoiser, "open") and hasattr(denoiser, "canvas_length")
    check_sync_every(sync_every, rule, editing=editing is not None, block_model=block_model)
    if block_model:
        if answer_first is not None:
            raise ConfigError("answer-first decoding needs the answer slots in the decoded canvas; a block-diffusion "
                              "model generates canvas by canvas: drop decode.answer_first")
        return _decode_blocks(denoiser, state, rule, schedule=schedule, conditioning=conditioning or {},
                              editing=editing, chooser=chooser, generator=generator, stats_dtype=stats_dtype,
                              confidence=confidence, early_exit=early_exit, cache=cache)
    blocks = (schedule or BlockSchedule()).resolve(state.gen_length)
    self_conditioning = bool(getattr(denoiser, "self_conditioning", False))
    _check_modes(state, blocks, early_exit, editing, self_conditioning, cache, answer_first)
    chooser = chooser or TokenChooser()
    conditioning = conditioning or {}
    device = state.tokens.device
    progress = _Progress(state, blocks)
    peeking = _peeks(denoiser, rule, blocks, cache, cache_refresh)
    window = blocks.length * (2 if rule.history and blocks.count > 1 and not peeking else 1)
    offsets = torch.arange(window, device=device)
    if peeking:  # per row: its next block's tokens before the step that left its block, and whether to peek
        ahead = state.tokens.new_zeros(state.batch, blocks.length)
        pending = torch.zeros(state.batch, dtype=torch.bool, device=device)
    history: KLHistory | None = None
    capturable = getattr(denoiser, "capturable", False)
    if graphs is None:
        runner = StepRunner(capture, device, capturable)
    else:
        key = _graph_key(denoiser, state, (capture, cache, cache_refresh, blocks.length, window, chooser, stats_dtype,
                                           confidence), early_exit, conditioning)
        runner = graphs.runner(key, capture, device, capturable)
    captured, capture_s = runner.captured, runner.capture_s
    forward = StepForward(
        denoiser, state, mode=cache, refresh=cache_refresh, window=window, block_length=blocks.length,
        answer=None if early_exit is None else early_exit.answer, runner=runner,
        stats=_statistics(None if state.uniform else state.mask_id, chooser, stats_dtype, confidence),
        storage=None if graphs is None else graphs.storage,
    )
    phase = None if editing is None else _EditPhase(editing, state.batch, blocks.steps, device)
    foresee = early_exit is None and answer_first is None and editing is None  # a chunk's first counts: the synced
    exact = (foresee and rule.schedule == "linear" and getattr(rule, "fixed_count", False)
             and not (cache != "none" and cache_refresh))
    if sync_every == "auto":
        sync_every = auto_sync_every(rule, exact=exact, cached=cache != "none", batch=state.batch, device=device)
    chunks = Chunks(sync_every, blocks, cache != "none", exact, foresee, rule.schedule)
    first = None if answer_first is None else torch.zeros_like(state.frozen).scatter(1, answer_first, True)
    previous: torch.Tensor | None = None  # the last step's logits, for a self-conditioned denoiser
    if early_exit is not None:
        slots = early_exit.answer.shape[1]
        local_exit = EarlyExit(early_exit.gamma, torch.arange(slots, device=device).expand(state.batch, slots))
    for cb in callbacks:
        cb.on_start(state)

    step = syncs = 0
    plan: list[int | None] = []  # the host bound of k of each step still to issue in this chunk (core/multistep.py)
    last = time.perf_counter()
    prev_rows = torch.zeros(0, dtype=torch.long)
    while True:
        state.finished = ~state.masked[:, state.gen_start :].any(dim=1) | state.exited
        if phase is not None:
            state.finished &= ~phase.open | state.exited
        due = forward.due(progress.block)
        if not plan:
            extra = chunks.extra(state, progress)
            peeks = [pending.long()] if peeking else []
            host = torch.stack([(~state.finished).long(), due.long(), progress.block, *extra, *peeks]).cpu()  # sync
            syncs += 1
            if peeking:
                host, peek_rows = host[:-1], (host[-1].bool() & host[0].bool()).nonzero().squeeze(1)
            open_rows = host[0].nonzero().squeeze(1)
            now = time.perf_counter()
            charge, last = (prev_rows, now - last), now
            if open_rows.numel() == 0:
                state.wall_s[prev_rows] += charge[1]
                break
            if peeking:
                pending.zero_()
                if peek_rows.numel():
                    _peek(forward, history, state, peek_rows, ahead, progress, blocks.length, conditioning)
            rows = open_rows.to(device, non_blocking=True)
            full = rows.numel() == state.batch
            plan = None  # planned once the step's denoiser call is queued (host work the GPU need not wait for)
            due_host, first_block = host[1][open_rows].bool(), int(host[2][open_rows].min())
            live = None  # every row of the chunk is open at its first step
        else:  # a step inside the chunk: which of its rows step is decided on the device
            live = ~(state.finished[rows] | due[rows])
            due = torch.zeros_like(due)
            due_host = torch.zeros_like(due_host)
        tokens = state.tokens if full else state.tokens[rows]

        rel = progress.block[rows].unsqueeze(1) * blocks.length + offsets
        valid = rel < state.gen_length
        idx = state.gen_start + rel.clamp_max(state.gen_length - 1)
        cond = _subset(conditioning, rows, state.batch, full)
        if previous is not None:
            cond = {**cond, "self_conditioning": previous[rows]}
        out = forward(tokens, cond, rows=rows, open_rows=open_rows,
                      idx=idx, valid=valid, due=due, due_host=due_host, first_block=first_block)
        if plan is None:
            plan = chunks.plan(host, open_rows)
            state.wall_s[charge[0]] += charge[1]
        k_max = plan.pop(0)
        state.nfe[rows] += 1 if live is None else live.long()
        win_tokens = tokens.gather(1, idx)
        uncommitted = state.masked[rows]  # a copy: the uniform flags are updated in place below
        in_block = valid & (offsets < blocks.length)
        active = uncommitted.gather(1, idx) & in_block
        if live is not None:
            active &= live.unsqueeze(1)
        if first is not None:
            active = _first_only(active, first[rows].gather(1, idx))
        if self_conditioning:
            previous = out.window.new_zeros((state.batch, *out.window.shape[1:])) if previous is None else previous
            previous.index_copy_(0, rows, out.window)

        if peeking:  # the next block's tokens as they are before this step's commit
            nxt = state.gen_start + (rel + blocks.length).clamp_max(state.gen_length - 1)
            before = tokens.gather(1, nxt)
        x0 = chooser(out.window, generator) if out.x0 is None else out.x0
        stats = _prefilled(StepStats(out.window, x0, stats_dtype, confidence), probs=out.probs, conf=out.conf)
        kl_history = None
        if rule.history:
            if history is None:
                history = KLHistory(state.batch, window, out.window.shape[-1], rule.history, device, stats_dtype)
            kl_history = history.update(rows, stats.probs, live)
        remaining = active.sum(dim=1)
        n0 = progress.n0[rows] if blocks.spread == "masked" else torch.full_like(remaining, blocks.length)
        k = tokens_this_step(rule.schedule, n0, remaining, progress.step[rows], blocks.steps)
        ctx = StepContext(active, k, progress.step[rows], blocks.steps, blocks.length, kl_history, generator, k_max)
        chosen = ensure_progress(rule.select(stats, ctx) & active, stats.conf, active)

        head = idx[:, : blocks.length]
        commit = chosen[:, : blocks.length]
        change = commit
        if phase is not None:
            editable = (~active & in_block & ~state.frozen[rows].gather(1, idx))[:, : blocks.length]
            edited = phase.edits(stats, x0[:, : blocks.length], win_tokens[:, : blocks.length], editable)
            phase.update(rows, active.any(dim=1), progress.step[rows], edited)
            change = commit | edited
        new = torch.where(change, x0[:, : blocks.length], win_tokens[:, : blocks.length])
        updated = tokens.scatter(1, head, new)
        if state.uniform:
            still = uncommitted.scatter(1, head, active[:, : blocks.length] & ~commit)
            if live is not None:  # a paused row (under a cache) keeps its flags
                still = torch.where(live.unsqueeze(1), still, uncommitted)
            state.uncommitted[rows] = still
            updated = torch.where(still, noise(tuple(updated.shape), denoiser.vocab_size, device, generator), updated)
        if early_exit is not None:
            exits, updated = _exit_early(early_exit, local_exit, out.answers, updated, rows, state.mask_id, chooser,
                                         generator)
            state.exited[rows] |= exits if live is None else exits & live
        if live is not None:  # a row's no-op step keeps its canvas (and under uniform corruption its noise)
            updated = torch.where(live.unsqueeze(1), updated, tokens)
        committed_rows = uncommitted & ~(state.uncommitted[rows] if state.uniform else updated == state.mask_id)
        state.tokens[rows] = updated
        marks = state.commit_step[rows]
        state.commit_step[rows] = torch.where(committed_rows, (state.nfe[rows] - 1).unsqueeze(1), marks)
        moved = progress.advance(state, rows, live)
        if peeking:
            one = moved == 1
            ahead[rows] = torch.where(one[rows].unsqueeze(1), before, ahead[rows])
            pending |= one
        if history is not None:
            history.shift(moved, blocks.length)
        if callbacks:
            committed = torch.zeros_like(state.tokens, dtype=torch.bool)
            committed[rows] = committed_rows
            for cb in callbacks:
                cb.on_step(state, step, rows, committed)
        prev_rows = open_rows
        step += 1

    for cb in callbacks:
        cb.on_end(state)
    return DecodeResult(state.tokens, state.nfe, state.wall_s, state.commit_step, step, state,
                        runner.captured - captured, syncs, runner.capture_s - capture_s)


def _graph_key(denoiser: Denoiser, state: MaskedState, settings: tuple, early_exit: EarlyExit | None,
               conditioning: dict) -> tuple | None:
    """What a decode's captured calls depend on beyond their inputs' shapes (core/capture.py KeptGraphs): the
    denoiser, whether it is capturable and where its weights lie, the canvas layout, the loop settings the calls read,
    the answer slots, and the conditioning: per-row tensors by shape, other values by value when they are plain
    scalars, strings or dtypes (or tuples of them). None for any other value, such as a tensor shared by every row,
    which the calls would go on reading where it lay at capture."""
    consts = []
    for name, value in sorted(conditioning.items()):
        if torch.is_tensor(value) and value.shape[:1] == (state.batch,):
            consts.append((name, tuple(value.shape), value.dtype))
        elif _plain(value):
            consts.append((name, type(value), value))
        else:
            return None
    answer = None if early_exit is None else tuple(early_exit.answer.shape)
    return (denoiser, getattr(denoiser, "capturable", False), memory_of(denoiser), str(state.tokens.device),
            state.batch, state.length, state.gen_start, state.uniform, state.mask_id, settings, answer, tuple(consts))


def _plain(value: object) -> bool:
    """A value compared by value in a KeptGraphs key: None, a bool, number, string or dtype, or a tuple of them."""
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str, torch.dtype))


def _peeks(denoiser: Denoiser, rule: Rule, blocks: Blocks, cache: str, refresh: int) -> bool:
    """Whether a rule with history takes its next block's distribution from a peek (``_peek``) under the dual
    cache, its window then one block; elsewhere the window holds the next block too: a full or prefix-cache forward
    computes those positions anyway (every step with ``cache_refresh`` 1), and a denoiser may lack ``peek``."""
    return (bool(rule.history) and blocks.count > 1 and cache == "dual" and refresh != 1
            and callable(getattr(denoiser, "peek", None)))


def _peek(forward: StepForward, history: KLHistory, state: MaskedState, rows: torch.Tensor, ahead: torch.Tensor,
          progress: _Progress, length: int, conditioning: dict) -> None:
    """The previous distribution of the new active block of state rows ``rows`` (host), whose block advanced by one
    at their last step: one cached call (StepForward.peek) of that block's positions with their tokens from before
    that step's commit (``ahead``) against the row's cache as that step left it, where the old block holds the step's
    fresh keys/values (of the canvas before the commit, the one the step's logits came from). That is what the
    two-block window's next-block half computes in that step, up to the old block's keys/values having been
    computed without the next block's fresh ones.

    NFE: counted as one for each of the rows (so commit steps, ``nfe - 1`` at the commit, count it too). The project
    counts NFE as denoiser calls per row (ALGORITHMS.md), and a peek is one whose output the rule reads, as costly
    per row as an ordinary cached step (one block of queries against the cache); the uncached loop and the two-block
    window pay for the same distributions inside their steps, so their NFE are lower by one per block advance.
    """
    local = rows.to(ahead.device)
    columns = state.gen_start + progress.block[local].unsqueeze(1) * length + torch.arange(length, device=ahead.device)
    cond = _subset(conditioning, local, state.batch, False)
    probs = forward.peek(state.tokens[local].scatter(1, columns, ahead[local]), columns, rows, cond)
    history.fill(local, torch.log(probs + history.eps))
    state.nfe[local] += 1


def _first_only(active: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """``active`` restricted to the ``first`` positions in the rows that still have one of them active."""
    pending = (active & first).any(dim=1, keepdim=True)
    return active & (first | ~pending)


def _check_modes(state: MaskedState, blocks: Blocks, early_exit: EarlyExit | None, editing: Editing | None,
                 self_conditioning: bool, cache: str, answer_first: torch.Tensor | None = None) -> None:
    """One-line errors for option combinations that have no meaning (the CLI turns them into exit 2)."""
    if answer_first is not None and blocks.count > 1:
        raise ConfigError("answer-first decoding orders the whole canvas, so it needs one block: leave "
                          "decode.block_length unset (or equal to the generation length)")
    if state.uniform and early_exit is not None:
        raise ConfigError("answer-block early exit reads masked answer slots, but this model uses uniform corruption "
                          "(no mask token): drop the early exit (infill.gamma) or use an absorbing (masked) model")
    if editing is not None and blocks.count > 1:
        raise ConfigError("post-mask editing works on one block per decode (block diffusion gives each canvas its "
                          "own); set decode.block_length to the generation length or sample through core.blocks")
    if self_conditioning and (blocks.count > 1 or state.gen_start > 0 or cache != "none"):
        raise ConfigError("a self-conditioned denoiser reads the whole canvas's previous logits: decode one canvas "
                          "without prompt columns, blocks or KV cache (core.blocks does this per canvas)")


def _decode_blocks(model, state: MaskedState, rule: Rule, *, early_exit: EarlyExit | None, cache: str,
                   **options) -> DecodeResult:
    """decode() of a block-diffusion model (core/blocks.py): the outer loop over canvases, each a decode of its own.

    The model keeps its context in its own causal cache, so the loop's prefix / dual cache does not apply.
    """
    from mdsample.core.blocks import decode_state  # blocks.py runs decode() per canvas: import at call time

    if early_exit is not None:
        why = "uses uniform corruption (no mask token to hold answer slots)" if model.corruption == "uniform" else \
            "generates canvas by canvas (answer slots need the whole canvas in one decode)"
        raise ConfigError(f"answer-block early exit does not apply: this block-diffusion model {why}; drop "
                          "decode.early_exit")
    if cache != "none":
        raise ConfigError(f"decode.cache={cache} is for masked models; a block-diffusion model keeps its context in "
                          "its own causal cache: use decode.cache=none")
    start = time.perf_counter()
    decode_state(model, state, rule, **options)
    state.wall_s += time.perf_counter() - start
    return DecodeResult(state.tokens, state.nfe, state.wall_s, state.commit_step, int(state.nfe.max()), state)
