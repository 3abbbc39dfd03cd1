"""Tokens-per-step schedules and semi-autoregressive blocks.

The generation region is tiled into blocks of ``block_length``; each block gets ``steps // num_blocks`` steps.
A schedule says how many positions a step commits: "linear" is LLaDA's get_num_transfer_tokens (the block's
masked count at its start, spread evenly, the first ``n % steps`` steps taking one more), "cosine" is MaskGIT's
(the fraction still masked after step s is cos(pi/2 * (s+1)/steps)). Adaptive rules (MED, threshold, ...)
ignore the count except as a fallback. Every count is clamped to [1, remaining] so a block always makes
progress and never selects a non-masked position (ALGORITHMS.md: the reference's defect not to copy).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from mdsample.errors import ConfigError

SPREADS = ("masked", "block")


@dataclass(frozen=True)
class Blocks:
    """The resolved block layout of one decode: ``count`` blocks of ``length`` positions, ``steps`` each."""

    count: int
    length: int
    steps: int
    spread: str = "masked"


@dataclass(frozen=True)
class BlockSchedule:
    """``steps`` in total (None: one token per step) over blocks of ``block_length`` (None: one block).

    ``spread`` says what the linear / cosine count spreads over a block's steps: its masked positions at the block's
    start ("masked", LLaDA's get_num_transfer_tokens) or its full length ("block", diffusers'
    BlockRefinementScheduler: a block that starts with prompt tokens then finishes in fewer steps).
    """

    steps: int | None = None
    block_length: int | None = None
    spread: str = "masked"

    def resolve(self, gen_length: int) -> Blocks:
        if self.spread not in SPREADS:
            raise ConfigError(f"decode.spread={self.spread!r} is unknown; choose one of: {', '.join(SPREADS)}")
        block = gen_length if self.block_length is None else self.block_length
        if block < 1 or gen_length % block:
            raise ConfigError(
                f"decode.block_length={block} must divide the generation length {gen_length} "
                f"(e.g. one of {_divisors(gen_length)})"
            )
        count = gen_length // block
        steps = gen_length if self.steps is None else self.steps
        if steps < count or steps % count:
            raise ConfigError(
                f"decode.steps={steps} must be a positive multiple of the number of blocks ({count}); "
                f"use e.g. {count * max(1, steps // count)}"
            )
        return Blocks(count=count, length=block, steps=steps // count, spread=self.spread)


def tokens_this_step(
    kind: str, n0: torch.Tensor, remaining: torch.Tensor, step: torch.Tensor, steps: int
) -> torch.Tensor:
    """How many positions each row commits at block step ``step`` (0-based), clamped to [1, remaining].

    ``n0`` is each row's masked count at its block's start, ``remaining`` its masked count now.
    """
    if kind == "linear":
        k = n0 // steps + (step < n0 % steps).long()
    elif kind == "cosine":
        ratio = _cosine_ratios(steps, step.device)[step.clamp(0, steps - 1)]
        still_masked = torch.floor(n0.double() * ratio).long()
        k = remaining - still_masked
    else:
        raise ConfigError(f"unknown schedule {kind!r}; choose one of: cosine, linear")
    k = torch.where(step >= steps - 1, remaining, k)
    return torch.minimum(k.clamp_min(1), remaining)


@functools.cache
def _cosine_ratios(steps: int, device: torch.device) -> torch.Tensor:
    """cos(pi/2 * (s+1)/steps) for s < steps, float64, computed on the CPU and copied to ``device`` once: every device
    and the host's chunk plan (core/multistep.py) then multiply the same ratios, and a float64 product rounds the same
    everywhere, so they agree on every count (a GPU's own cos may differ in its last bit, and cos(pi/3) * n0 sits
    exactly on an integer)."""
    s = torch.arange(1, steps + 1, dtype=torch.float64)
    return torch.cos(math.pi / 2 * s / steps).to(device)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0][:8]
