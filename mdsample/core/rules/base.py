"""The Rule contract: a small object with a config dataclass and one ``select`` method.

A rule sees this step's statistics for the active window and returns which positions to commit. It never sees
the model, the cache or the canvas: the loop owns those. Everything is batched: ``select`` gets ``b`` rows at once
and must not loop over rows or positions in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from mdsample.core.rules.configs import NoOptions
from mdsample.core.stats import StepStats


@dataclass
class StepContext:
    """What the loop knows about this step, per active row.

    ``active[b, W]``: masked positions of the active block (only these may be committed; columns >= block_length
    are the next block, present for rules with history). ``k[b]``: the schedule's count for this step, already in
    [1, remaining]. ``step_in_block[b]``: 0-based step index inside the row's block. ``kl_history[b, W, H]``: the
    last H KL values per window position (rules with ``history`` > 0 only). ``k_max``: an upper bound of ``k`` known
    on the host, or None; a rule hands it to ``top_k_mask`` so that selection reads nothing back from the device
    (decode with ``sync_every`` > 1 sets it; None keeps the exact ``torch.topk(k)`` of the reference loops).
    """

    active: torch.Tensor
    k: torch.Tensor
    step_in_block: torch.Tensor
    steps_per_block: int
    block_length: int
    kl_history: torch.Tensor | None = None
    generator: torch.Generator | None = None
    k_max: int | None = None


class Rule:
    """Base class of selection rules. Subclasses set ``name``, ``Config`` and implement ``select``.

    ``schedule`` names the tokens-per-step schedule feeding ``ctx.k`` ("linear" or "cosine"); adaptive rules keep
    "linear" as their fallback count. ``history`` > 0 asks the loop for that many past KL values per position.
    ``device_only`` says that ``select`` is pure tensor work given ``ctx.k_max`` (no ``.item()``, ``int(tensor)``,
    ``bool(tensor)`` or host copies), so decode may queue several steps without a host sync (``sync_every`` > 1);
    a rule that leaves it False is only run with one sync per step. ``fixed_count`` says that ``select`` commits
    exactly ``ctx.k`` positions per row, so the loop can foresee every step's counts on the host.
    """

    name: ClassVar[str]
    Config: ClassVar[type] = NoOptions
    schedule: ClassVar[str] = "linear"
    device_only: ClassVar[bool] = False
    fixed_count: ClassVar[bool] = False

    def __init__(self, config: Any = None, **options: Any):
        self.config = config if config is not None else self.Config(**options)

    @property
    def history(self) -> int:
        return 0

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        """Bool [b, W]: positions to commit; a subset of ``ctx.active`` with at least one per row."""
        raise NotImplementedError(f"rule {type(self).__name__} must implement select()")


def top_k_mask(
    scores: torch.Tensor, candidates: torch.Tensor, k: torch.Tensor, k_max: int | None = None
) -> torch.Tensor:
    """Bool mask of the ``k[row]`` highest-scoring candidates of each row (ties broken as torch.topk breaks them).

    When every row asks for the same k this is exactly ``torch.topk(scores, k)`` per row, as the reference loops
    call it; otherwise it takes the max k once and keeps each row's prefix. A caller that knows an upper bound of
    k on the host passes ``k_max`` and saves the device sync of reading ``k.max()``.
    """
    masked_scores = scores.masked_fill(~candidates, float("-inf"))
    k_max = min(int(k.max()) if k_max is None else k_max, scores.shape[-1])
    idx = masked_scores.topk(k_max, dim=-1).indices
    keep = torch.arange(k_max, device=k.device).unsqueeze(0) < k.unsqueeze(1)
    chosen = torch.zeros_like(candidates).scatter(-1, idx, keep)
    return chosen & candidates


def ensure_progress(chosen: torch.Tensor, scores: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    """Add the best candidate to every row that has candidates but chose none."""
    stuck = ~chosen.any(dim=-1, keepdim=True)
    best = scores.masked_fill(~candidates, float("-inf")).argmax(dim=-1, keepdim=True)
    first = torch.zeros_like(candidates).scatter(-1, best, True) & candidates
    return chosen | (first & stuck)
