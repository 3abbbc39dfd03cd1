"""Synthetic inputs for checking a selection rule: step statistics, contexts and a tiny analytic denoiser.

Why synthetic: a rule's contract is about positions, not about any model, so the checks build the situations
where rules go wrong on purpose. The positions a rule must *not* touch (frozen, already committed, next block)
get the most confident, lowest-entropy distributions in the window, so a rule that ignores ``ctx.active`` picks
them; some rows have a single active position, so a rule that may choose nothing shows it; KL histories are small
enough that stability-based rules take their "ready" branch as well as their fallback.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mdsample.core.rules import StepContext
from mdsample.core.schedule import tokens_this_step
from mdsample.core.stats import StepStats

VOCAB = 7


@dataclass
class Situation:
    """One call of ``Rule.select``: its arguments plus a label for the report."""

    label: str
    stats: StepStats
    ctx: StepContext


def situations(history: int, schedule: str, seed: int, device: torch.device) -> list[Situation]:
    """The situations every rule must handle: mixed, all-active, last step of a block, one active per row."""
    out = []
    for label, fill, last_step in (("mixed", 0.5, False), ("all active", 1.0, False), ("last block step", 0.5, True),
                                   ("one active position per row", 0.0, False)):
        out.append(_situation(label, fill, last_step, history, schedule, seed + len(out), device))
    return out


def _situation(label: str, fill: float, last_step: bool, history: int, schedule: str, seed: int,
               device: torch.device) -> Situation:
    gen = torch.Generator().manual_seed(seed)
    rows, block, steps = 6, 12, 4
    width = 2 * block if history else block
    active = torch.rand(rows, block, generator=gen) < fill
    first = torch.randint(0, block, (rows,), generator=gen)
    active[torch.arange(rows), first] = True  # every row the loop calls has at least one active position
    active = torch.cat([active, torch.zeros(rows, width - block, dtype=torch.bool)], dim=1)
    # Inactive positions are the most tempting: peaked distributions; active ones are flatter, of varied sharpness.
    sharpness = torch.where(active, torch.rand(rows, width, generator=gen) * 4, torch.full((rows, width), 12.0))
    logits = torch.randn(rows, width, VOCAB, generator=gen) + sharpness.unsqueeze(-1) * torch.nn.functional.one_hot(
        torch.randint(0, VOCAB, (rows, width), generator=gen), VOCAB
    )
    x0 = logits.argmax(dim=-1)
    step = torch.full((rows,), steps - 1 if last_step else 1, dtype=torch.long)
    remaining = active.sum(dim=1)
    n0 = remaining + torch.randint(0, 3, (rows,), generator=gen)
    k = tokens_this_step(schedule, n0, remaining, step, steps)
    kl = torch.rand(rows, width, history, generator=gen) * 0.02 if history else None
    ctx = StepContext(active.to(device), k.to(device), step.to(device), steps, block,
                      None if kl is None else kl.to(device), torch.Generator(device).manual_seed(seed))
    return Situation(label, StepStats(logits.to(device), x0.to(device)), ctx)


def regenerate(situation: Situation, seed: int) -> Situation:
    """The same situation with a freshly seeded generator (statistics recomputed lazily from the same logits)."""
    ctx = situation.ctx
    fresh = StepContext(ctx.active, ctx.k, ctx.step_in_block, ctx.steps_per_block, ctx.block_length, ctx.kl_history,
                        torch.Generator(ctx.active.device).manual_seed(seed))
    return Situation(situation.label, StepStats(situation.stats.logits, situation.stats.x0), fresh)


def row(situation: Situation, i: int) -> Situation:
    """Row ``i`` alone, as the loop passes it once the other rows are finished."""
    ctx, sl = situation.ctx, slice(i, i + 1)
    one = StepContext(ctx.active[sl], ctx.k[sl], ctx.step_in_block[sl], ctx.steps_per_block, ctx.block_length,
                      None if ctx.kl_history is None else ctx.kl_history[sl], ctx.generator)
    return Situation(situation.label, StepStats(situation.stats.logits[sl], situation.stats.x0[sl]), one)


class NeighbourDenoiser:
    """logits[b, i, v] = table[i, v] + 3 [v == right neighbour's token]: distributions shift as neighbours commit.

    Deterministic and instant; enough for a rule to run through ``core.decode`` with blocks and KL history.
    """

    def __init__(self, length: int, vocab: int = VOCAB, seed: int = 0):
        self.vocab_size = vocab + 1
        self.mask_id = vocab
        self.table = torch.randn(length, self.vocab_size, generator=torch.Generator().manual_seed(seed))

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        logits = self.table.to(tokens.device).expand(tokens.shape[0], -1, -1).clone()
        right = tokens[:, 1:]
        known = (right != self.mask_id).unsqueeze(-1)
        bonus = torch.nn.functional.one_hot(right.clamp_max(self.mask_id - 1), self.vocab_size).float() * 3.0
        logits[:, :-1] += bonus * known
        logits[..., self.mask_id] = -1e4
        return logits
