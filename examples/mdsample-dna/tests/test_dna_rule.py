"""The ``spaced`` rule: its spacing guarantee, its relation to plain confidence top-k, and the conformance kit."""

from __future__ import annotations

import pytest
import torch
from mdsample_dna.spaced import Spaced

from mdsample.core.rules import BUILTIN_RULES, StepContext
from mdsample.core.stats import StepStats
from mdsample.errors import ConfigError
from mdsample.testing import check_rule


def step(seed: int, rows: int = 8, width: int = 32, k: int = 6) -> tuple[StepStats, StepContext]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, width, 5, generator=gen) * 3
    active = torch.rand(rows, width, generator=gen) < 0.7
    active[:, 0] = True
    ctx = StepContext(active, torch.full((rows,), k).minimum(active.sum(1)), torch.zeros(rows, dtype=torch.long), 4,
                      width)
    return StepStats(logits, logits.argmax(-1)), ctx


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_committed_positions_are_more_than_radius_apart(radius):
    for seed in range(20):
        stats, ctx = step(seed)
        chosen = Spaced(radius=radius).select(stats, ctx)
        assert (chosen & ~ctx.active).sum() == 0 and chosen.any(dim=1).all()
        for row in chosen:
            where = row.nonzero().flatten()
            assert (where.diff() > radius).all()


def test_the_most_confident_position_is_always_committed():
    stats, ctx = step(0)
    best = stats.conf.masked_fill(~ctx.active, -1).argmax(dim=1)
    chosen = Spaced().select(stats, ctx)
    assert chosen[torch.arange(len(best)), best].all()


def test_radius_zero_is_confidence_top_k():
    for seed in range(5):
        stats, ctx = step(seed)
        assert torch.equal(Spaced(radius=0).select(stats, ctx), BUILTIN_RULES["confidence"]().select(stats, ctx))


def test_negative_radius_is_a_config_error():
    with pytest.raises(ConfigError, match="radius must be >= 0"):
        Spaced(radius=-1)


def test_spaced_passes_the_conformance_kit():
    check_rule("spaced")  # by name: also checks that the entry point registered it
