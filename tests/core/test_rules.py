"""Each rule's contract on hand-built statistics, where the right answer is known exactly."""

from __future__ import annotations

import math

import torch

from mdsample.core.rules import BUILTIN_RULES, StepContext
from mdsample.core.stats import StepStats


def stats_from_probs(probs: torch.Tensor) -> StepStats:
    logits = torch.log(probs.double())
    return StepStats(logits, logits.argmax(-1), torch.float64)


def peaked(confs: list[float], vocab: int = 4) -> torch.Tensor:
    """One row of distributions whose top probability is each given conf, the rest spread evenly."""
    rows = []
    for c in confs:
        rest = (1 - c) / (vocab - 1)
        rows.append([c] + [rest] * (vocab - 1))
    return torch.tensor([rows], dtype=torch.float64)


def ctx(active, k=1, step=5, kl_history=None, steps=8, block=None):
    active = torch.as_tensor(active, dtype=torch.bool)
    b = active.shape[0]
    return StepContext(
        active=active,
        k=torch.full((b,), k, dtype=torch.long),
        step_in_block=torch.full((b,), step, dtype=torch.long),
        steps_per_block=steps,
        block_length=block or active.shape[1],
        kl_history=kl_history,
    )


def test_klass_commits_exactly_the_stable_confident_positions():
    stats = stats_from_probs(peaked([0.95, 0.95, 0.5, 0.97, 0.99]))
    kl = torch.tensor([[[0.001, 0.002], [0.001, 0.2], [0.0, 0.0], [0.005, 0.009], [0.0, 0.0]]], dtype=torch.float64)
    rule = BUILTIN_RULES["klass"](conf_threshold=0.9, kl_threshold=0.01, history=2)
    chosen = rule.select(stats, ctx([[1, 1, 1, 1, 0]], kl_history=kl))
    # 0: stable+confident; 1: last KL too high; 2: not confident; 3: ready; 4: not masked
    assert chosen.tolist() == [[True, False, False, True, False]]


def test_klass_falls_back_to_topk_confidence():
    stats = stats_from_probs(peaked([0.95, 0.5, 0.7, 0.6]))
    kl = torch.full((1, 4, 2), 1.0, dtype=torch.float64)
    rule = BUILTIN_RULES["klass"]()
    chosen = rule.select(stats, ctx([[1, 1, 1, 1]], k=2, kl_history=kl))
    assert chosen.tolist() == [[True, False, True, False]]


def test_klass_checks_stability_only_from_step_h_minus_1():
    stats = stats_from_probs(peaked([0.99, 0.98]))
    kl = torch.zeros(1, 2, 3, dtype=torch.float64)
    rule = BUILTIN_RULES["klass"](history=3)
    early = rule.select(stats, ctx([[1, 1]], k=1, step=1, kl_history=kl))
    late = rule.select(stats, ctx([[1, 1]], k=1, step=2, kl_history=kl))
    assert early.tolist() == [[True, False]]
    assert late.tolist() == [[True, True]]


def test_klass_single_strategies():
    stats = stats_from_probs(peaked([0.95, 0.99, 0.97]))
    kl = torch.tensor([[[0.0, 0.004], [0.0, 0.008], [0.0, 0.001]]], dtype=torch.float64)
    c = ctx([[1, 1, 1]], kl_history=kl)
    assert BUILTIN_RULES["klass"](unmask_strategy="max_conf").select(stats, c).tolist() == [[False, True, False]]
    assert BUILTIN_RULES["klass"](unmask_strategy="min_kl").select(stats, c).tolist() == [[False, False, True]]
    one = BUILTIN_RULES["klass"](unmask_strategy="random").select(stats, c)
    assert int(one.sum()) == 1


def entropy_stats(entropies_wanted: list[float]) -> StepStats:
    """Two-token distributions with the given entropies (nats), built by inverting the binary entropy."""
    probs = []
    for h in entropies_wanted:
        lo, hi = 0.5, 1.0
        for _ in range(80):
            mid = (lo + hi) / 2
            hm = -(mid * math.log(mid) + (1 - mid) * math.log(1 - mid)) if mid < 1 else 0.0
            lo, hi = (mid, hi) if hm > h else (lo, mid)
        probs.append([lo, 1 - lo])
    return stats_from_probs(torch.tensor([probs], dtype=torch.float64))


def test_med_commits_low_entropy_up_to_kmax():
    stats = entropy_stats([0.05, 0.3, 0.01, 0.15, 0.02])
    rule = BUILTIN_RULES["med"](entropy_threshold=0.2, k_max=3)
    chosen = rule.select(stats, ctx([[1, 1, 1, 1, 1]]))
    assert chosen.tolist() == [[True, False, True, False, True]]
    assert (stats.entropy[chosen] < 0.2).all() and int(chosen.sum()) <= 3


def test_med_without_passing_position_commits_the_lowest_entropy_one():
    stats = entropy_stats([0.5, 0.3, 0.4])
    chosen = BUILTIN_RULES["med"](entropy_threshold=0.2).select(stats, ctx([[1, 1, 1]]))
    assert chosen.tolist() == [[False, True, False]]


def test_ar_med_commits_the_contiguous_left_run():
    stats = entropy_stats([0.01, 0.5, 0.02, 0.03, 0.5, 0.01])
    rule = BUILTIN_RULES["ar_med"](entropy_threshold=0.2, k_max=8)
    # position 1 is already committed (not active): the run goes over masked positions 0, 2, 3 and stops at 4
    chosen = rule.select(stats, ctx([[1, 0, 1, 1, 1, 1]]))
    assert chosen.tolist() == [[True, False, True, True, False, False]]
    capped = BUILTIN_RULES["ar_med"](entropy_threshold=0.2, k_max=2).select(stats, ctx([[1, 0, 1, 1, 1, 1]]))
    assert capped.tolist() == [[True, False, True, False, False, False]]


def test_ar_med_commits_leftmost_when_it_fails():
    stats = entropy_stats([0.9, 0.5, 0.01])
    chosen = BUILTIN_RULES["ar_med"]().select(stats, ctx([[0, 1, 1]]))
    assert chosen.tolist() == [[False, True, False]]


def test_eb_respects_its_bound():
    stats = entropy_stats([0.04, 0.3, 0.03, 0.05, 0.02])
    chosen = BUILTIN_RULES["eb"](gamma=0.1).select(stats, ctx([[1, 1, 1, 1, 1]]))
    h = stats.entropy[chosen]
    assert float(h.sum() - h.max()) <= 0.1
    # sorted: .02 .03 .04 .05 .3 -> prefix sums before: 0 .02 .05 .09 .14 -> the first four fit
    assert chosen.tolist() == [[True, False, True, True, True]]


def test_threshold_and_its_progress_guarantee():
    stats = stats_from_probs(peaked([0.95, 0.5, 0.92]))
    assert BUILTIN_RULES["threshold"](threshold=0.9).select(stats, ctx([[1, 1, 1]])).tolist() == [[True, False, True]]
    low = stats_from_probs(peaked([0.5, 0.6, 0.4]))
    assert BUILTIN_RULES["threshold"](threshold=0.9).select(low, ctx([[1, 1, 1]])).tolist() == [[False, True, False]]


def test_topk_rules_pick_their_statistic():
    stats = stats_from_probs(torch.tensor([[[0.5, 0.5, 0.0], [0.6, 0.2, 0.2], [0.4, 0.35, 0.25]]], dtype=torch.float64))
    c = ctx([[1, 1, 1]], k=1)
    assert BUILTIN_RULES["confidence"]().select(stats, c).tolist() == [[False, True, False]]
    assert BUILTIN_RULES["margin"]().select(stats, c).tolist() == [[False, True, False]]
    assert BUILTIN_RULES["entropy"]().select(stats, c).tolist() == [[True, False, False]]
