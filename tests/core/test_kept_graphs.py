"""Graphs and KV cache kept from one decode to the next (core/capture.py KeptGraphs): the same tokens as fresh
decodes, storage reused only for a decode of the same kind, nothing kept where the key cannot name what the calls
read."""

from __future__ import annotations

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.capture import KeptGraphs, memory_of
from mdsample.core.rules import BUILTIN_RULES
from tests.core.test_cache import (
    GEN,
    MASK,
    RULES,
    UNEVEN,
    one_thread,  # noqa: F401  (autouse: these tiny models run on one thread)
    prompts,
    run,
    tiny_lean,
)


def counting_caches(model) -> list:
    """Record every KV cache the model makes."""
    made, make = [], model.new_cache

    def new_cache(*args):
        made.append(make(*args))
        return made[-1]

    model.new_cache = new_cache
    return made


@pytest.mark.parametrize("rule", ["confidence", "klass"])
@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_a_kept_cache_with_stale_contents_gives_the_fresh_tokens(rule, mode):
    """The second decode reuses the first one's cache, whose rows that run compacted (rows finish unevenly), and
    decodes other prompts exactly as a fresh decode does."""
    model, fresh = tiny_lean(4), tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()
    for seed in (4, 9, 11):
        p = prompts(4, seed=seed)
        reused = run(model, rule, p, cache=mode, frozen=UNEVEN, capture="on", graphs=kept)
        alone = run(fresh, rule, p, cache=mode, frozen=UNEVEN, capture="on")
        assert torch.equal(reused.tokens, alone.tokens) and torch.equal(reused.nfe, alone.nfe)
        assert torch.equal(reused.commit_step, alone.commit_step)
    assert len(made) == 1


def test_another_kind_of_decode_releases_what_is_kept():
    model = tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()
    run(model, "confidence", prompts(4), cache="dual", capture="on", graphs=kept)
    three = run(model, "confidence", prompts(3), cache="dual", capture="on", graphs=kept)
    assert len(made) == 2 and kept.storage("kv", lambda: None) is made[1]
    assert torch.equal(three.tokens, run(tiny_lean(4), "confidence", prompts(3), cache="dual").tokens)


def test_nothing_is_kept_eagerly_or_for_a_shared_conditioning_tensor():
    model = tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()
    for _ in range(2):
        run(model, "confidence", prompts(2), cache="dual", capture="off", graphs=kept)
    assert len(made) == 2

    def shared(model):
        state = MaskedState.blank(2, GEN, MASK, prompt=prompts(2))
        mask = torch.ones(1, state.length, dtype=torch.long)  # one row for every row: not a per-row input
        return decode(model, state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(GEN, 4), cache="dual",
                      capture="on", conditioning={"attention_mask": mask}, graphs=kept)

    shared(model)
    shared(model)
    assert len(made) == 4


def test_moved_weights_change_the_key():
    model = tiny_lean(4)
    before = memory_of(model)
    assert before == memory_of(model)
    model.model.float()
    assert memory_of(model) != before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("rule", ["confidence", "klass"])
def test_kept_cuda_graphs_replay_without_capturing(rule):
    """Only the first decode of a shape captures; the later ones (other prompts, and after an eager call on a longer
    canvas has grown the rotary table the graphs read) give the tokens of decodes that capture afresh."""
    model = tiny_lean(4, counting=False)
    model.model.cuda()
    kept = KeptGraphs()

    def go(model, seed, graphs):
        state = MaskedState.blank(4, GEN, MASK, prompt=prompts(4, seed=seed).cuda(), device="cuda")
        for row, cols in UNEVEN.items():
            state.tokens[row, [3 + c for c in cols]] = 1
            state.frozen[row, [3 + c for c in cols]] = True
        return decode(model, state, BUILTIN_RULES[rule](**RULES[rule]), schedule=BlockSchedule(GEN, 4),
                      cache="dual", capture="on", graphs=graphs)

    first = go(model, 4, kept)
    assert first.graphs > 0
    for seed in (9, 11):
        if seed == 11:
            model(torch.zeros(1, 4 * GEN, dtype=torch.long, device="cuda"))
        again = go(model, seed, kept)
        assert again.graphs == 0 and again.capture_s == 0
        fresh = tiny_lean(4, counting=False)
        fresh.model.cuda()
        assert torch.equal(again.tokens, go(fresh, seed, None).tokens)
