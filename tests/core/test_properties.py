"""Property-based tests of every rule and of decode() over random shapes and logits."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.rules import BUILTIN_RULES, StepContext
from mdsample.core.stats import StepStats

RULES = sorted(BUILTIN_RULES)


@st.composite
def step_case(draw):
    b = draw(st.integers(1, 4))
    w = draw(st.integers(1, 12))
    v = draw(st.integers(2, 9))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, w, v, generator=g) * draw(st.floats(0.1, 8.0))
    active = torch.rand(b, w, generator=g) < draw(st.floats(0.2, 1.0))
    k = torch.randint(1, w + 1, (b,), generator=g)
    k = torch.minimum(k, active.sum(1).clamp_min(1))
    history = draw(st.integers(1, 3))
    kl = torch.rand(b, w, history, generator=g) * 0.05
    step = torch.randint(0, 6, (b,), generator=g)
    return logits, active, k, kl, step, g


@settings(max_examples=60, deadline=None)
@given(case=step_case(), name=st.sampled_from(RULES))
def test_rules_commit_only_active_positions_and_always_progress(case, name):
    logits, active, k, kl, step, g = case
    rule = BUILTIN_RULES[name](history=kl.shape[-1]) if name == "klass" else BUILTIN_RULES[name]()
    stats = StepStats(logits, logits.argmax(-1))
    ctx = StepContext(active, k, step, 6, logits.shape[1], kl, g)
    chosen = rule.select(stats, ctx)
    assert chosen.dtype == torch.bool and chosen.shape == active.shape
    assert not (chosen & ~active).any()
    has = active.any(1)
    assert (chosen.sum(1)[has] >= 1).all()


@st.composite
def decode_case(draw):
    gen = draw(st.sampled_from([4, 6, 8, 12]))
    blocks = draw(st.sampled_from([d for d in (1, 2, 3, 4) if gen % d == 0]))
    block_length = gen // blocks
    steps = blocks * draw(st.integers(1, block_length))
    b = draw(st.integers(1, 3))
    v = draw(st.integers(3, 8))
    seed = draw(st.integers(0, 2**16))
    return gen, block_length, steps, b, v, seed


class RandomDenoiser:
    """Logits that depend on the canvas through a seeded hash, so every step sees new distributions."""

    def __init__(self, vocab: int, seed: int):
        self.vocab_size = vocab + 1
        self.mask_id = vocab
        self.seed = seed

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        b, length = tokens.shape
        g = torch.Generator().manual_seed(self.seed + int(tokens.sum()))
        return torch.randn(b, length, self.vocab_size, generator=g) * 3


@settings(max_examples=40, deadline=None)
@given(case=decode_case(), name=st.sampled_from(RULES), temperature=st.sampled_from([0.0, 1.0]))
def test_decode_terminates_and_respects_frozen_and_blocks(case, name, temperature):
    gen, block_length, steps, b, v, seed = case
    model = RandomDenoiser(v, seed)
    prompt = torch.randint(0, v, (1, 2), generator=torch.Generator().manual_seed(seed))
    state = MaskedState.blank(b, gen, model.mask_id, prompt=prompt)
    state.tokens[:, -1] = 0
    state.frozen[:, -1] = True
    before = state.tokens.clone()
    result = decode(
        model, state, BUILTIN_RULES[name](), schedule=BlockSchedule(steps, block_length),
        chooser=TokenChooser(temperature=temperature), generator=torch.Generator().manual_seed(seed),
    )
    assert not (result.tokens == model.mask_id).any()
    assert torch.equal(result.tokens[state.frozen], before[state.frozen])
    assert (result.nfe <= gen).all() and result.steps <= gen
    # blocks are filled in order: every position of block j is committed before any of block j + 1
    order = result.commit_step[:, 2:].view(b, -1, block_length)
    first = order.masked_fill(order < 0, 10**6).min(-1).values
    last = order.max(-1).values
    assert (last[:, :-1] < first[:, 1:]).all() | (order.shape[1] == 1)
