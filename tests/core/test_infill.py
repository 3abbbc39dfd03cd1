"""Reasoning-as-infilling: templates, early exit at exactly H_UB < gamma, posterior sampling, partial-trace scores."""

from __future__ import annotations

import math

import pytest
import torch

from mdsample.core import BlockSchedule, TokenChooser, decode
from mdsample.core.infill import (
    EarlyExit,
    answer_entropy_bound,
    answer_log_likelihood,
    infill_canvas,
    slot_pseudo_log_likelihood,
)
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError
from tests.core.toys import MixingDenoiser, ProductDenoiser

MASK, PAD, DELIM = 5, 4, 3
R = 8  # reasoning slots


class ReasoningToy:
    """Reasoning slots are near-certain (token 0, more confident to the left); the single answer slot is
    Bernoulli over tokens {1, 2} with p(2) = sigmoid(rate * filled reasoning slots), rate = 0.5 or 1.0 by the
    row's prompt token. So H_UB after s filled slots is the binary entropy of sigmoid(rate * s), known exactly.
    """

    vocab_size = 6
    mask_id = MASK

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        b, length = tokens.shape
        logits = torch.full((b, length, self.vocab_size), -30.0, dtype=torch.float64)
        conf = torch.linspace(12.0, 9.0, R, dtype=torch.float64)
        logits[:, 1 : 1 + R, 0] = conf
        filled = (tokens[:, 1 : 1 + R] != MASK).sum(dim=1).double()
        rate = torch.where(tokens[:, 0] == 1, 1.0, 0.5).double()
        z = rate * filled
        logits[:, -1, 1] = 0.0
        logits[:, -1, 2] = z
        return logits


def binary_entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def exit_step(rate: float, gamma: float) -> int | None:
    """First step s (s reasoning slots filled before it) with H(sigmoid(rate * s)) < gamma."""
    for s in range(R + 1):
        if binary_entropy(1 / (1 + math.exp(-rate * s))) < gamma:
            return s
    return None


def toy_canvas(prompt_tokens: list[int]):
    return infill_canvas([[t] for t in prompt_tokens], reasoning_length=R, delimiter=[DELIM], answer_length=1,
                         mask_id=MASK, pad_id=PAD)


def test_canvas_layout_freezes_prompt_delimiter_and_given_answer():
    canvas = infill_canvas([[1, 2], [1]], reasoning_length=3, delimiter=[3, 3], answer_length=2, mask_id=MASK,
                           pad_id=PAD, answers=[[1, 2], [2, 2]], reasoning_prefix=[[0], []])
    s = canvas.state
    assert s.tokens.tolist() == [[1, 2, 0, MASK, MASK, 3, 3, 1, 2], [PAD, 1, MASK, MASK, MASK, 3, 3, 2, 2]]
    assert s.gen_start == 2
    assert s.frozen.tolist()[1] == [True, True, False, False, False, True, True, True, True]
    assert s.frozen[0, 2] and not s.frozen[1, 2]
    assert canvas.attention_mask[:, 0].tolist() == [1, 0]
    assert canvas.answer.tolist() == [[7, 8], [7, 8]]
    assert canvas.reasoning.tolist() == [[2, 3, 4], [2, 3, 4]]


@pytest.mark.parametrize("bad", [
    dict(answers=[[1]]),
    dict(reasoning_prefix=[[0] * 9]),
    dict(prompt_width=0),
])
def test_canvas_rejects_inconsistent_requests(bad):
    with pytest.raises(ConfigError):
        infill_canvas([[1]], reasoning_length=2, delimiter=[3], answer_length=2, mask_id=MASK, pad_id=PAD, **bad)


def test_entropy_bound_sums_masked_answer_slots_only():
    logits = torch.zeros(1, 4, 6)
    logits[0, 2, :2] = 10.0  # slot 2: uniform over two tokens -> ln 2 (other tokens ~0)
    logits[0, 3, 0] = 50.0   # slot 3: certain
    tokens = torch.tensor([[0, 0, MASK, MASK]])
    h = answer_entropy_bound(logits, tokens, torch.tensor([[2, 3]]), MASK)
    assert h.item() == pytest.approx(math.log(2), abs=1e-3)
    tokens[0, 2] = 1  # a committed slot adds nothing
    assert answer_entropy_bound(logits, tokens, torch.tensor([[2, 3]]), MASK).item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("gamma", [0.6, 0.3, 0.1, 0.02, 1e-4])
def test_early_exit_fires_exactly_when_bound_drops_below_gamma(gamma):
    canvas = toy_canvas([0, 1])
    state = canvas.state
    rule = BUILTIN_RULES["confidence"](BUILTIN_RULES["confidence"].Config())
    decode(ReasoningToy(), state, rule, early_exit=EarlyExit(gamma, canvas.answer), stats_dtype=torch.float64)
    for row, rate in enumerate([0.5, 1.0]):
        s = exit_step(rate, gamma)
        if s is None:  # never settles: full decode, one slot per step (reasoning, then the answer)
            assert state.nfe[row].item() == R + 1 and not state.exited[row]
            continue
        assert state.exited[row] == (s + 1 < R)  # a canvas completed at that step is finished, not exited
        assert state.nfe[row].item() == s + 1
        reasoning = state.tokens[row, 1 : 1 + R]
        assert (reasoning != MASK).sum().item() == min(s + 1, R)  # this step's rule commit happened too
        assert state.tokens[row, -1].item() == 2  # the answer slot took the argmax of the same forward
        assert state.commit_step[row, -1].item() == s


def test_early_exit_batch_equals_rows():
    gamma = 0.1
    batched = toy_canvas([0, 1, 0])
    rule = BUILTIN_RULES["klass"](BUILTIN_RULES["klass"].Config())
    decode(ReasoningToy(), batched.state, rule, early_exit=EarlyExit(gamma, batched.answer))
    for row, token in enumerate([0, 1, 0]):
        single = toy_canvas([token])
        decode(ReasoningToy(), single.state, rule, early_exit=EarlyExit(gamma, single.answer))
        assert torch.equal(single.state.tokens[0], batched.state.tokens[row])
        assert single.state.nfe[0] == batched.state.nfe[row]


def test_early_exit_rejects_non_positive_gamma():
    with pytest.raises(ConfigError):
        EarlyExit(0.0, torch.zeros(1, 1, dtype=torch.long))


@pytest.mark.parametrize("sampler", ["confidence", "klass", "med", "random"])
def test_posterior_sampling_never_changes_the_answer(sampler):
    toy = MixingDenoiser(vocab=12, length=16, seed=3)
    answers = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    canvas = infill_canvas([[1, 2], [3], [4, 5]], reasoning_length=9, delimiter=[10], answer_length=3,
                           mask_id=toy.mask_id, pad_id=0, answers=answers)
    rule = BUILTIN_RULES[sampler](BUILTIN_RULES[sampler].Config())
    g = torch.Generator().manual_seed(0)
    decode(toy, canvas.state, rule, chooser=TokenChooser(temperature=1.0), generator=g)
    assert canvas.state.tokens[:, -3:].tolist() == answers
    assert (canvas.state.tokens[:, -4] == 10).all()
    assert not canvas.state.masked.any()


def test_answer_log_likelihood_is_the_mean_answer_log_prob_with_slots_masked():
    logits = torch.randn(1, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = []

    class Recording(ProductDenoiser):
        def __call__(self, tokens, **kw):
            seen.append(tokens.clone())
            return super().__call__(tokens, **kw)

    toy = Recording(logits, MASK)
    tokens = torch.tensor([[0, 1, 2, 3, 1, 2]])  # answer slots 4, 5 hold some (other) tokens
    answer = torch.tensor([[4, 5]])
    gold = torch.tensor([[2, 0]])
    score = answer_log_likelihood(toy, tokens, answer, gold)
    assert seen[0][0, 4:].tolist() == [MASK, MASK]
    allowed = logits[0, :, :MASK]  # the mask token (last id here) is not a candidate
    expected = (torch.log_softmax(allowed[4], -1)[2] + torch.log_softmax(allowed[5], -1)[0]) / 2
    assert score.item() == pytest.approx(expected.item(), abs=1e-6)
    only_first = answer_log_likelihood(toy, tokens, answer, gold, counted=torch.tensor([[True, False]]))
    assert only_first.item() == pytest.approx(torch.log_softmax(allowed[4], -1)[2].item(), abs=1e-6)


class CopyLeft:
    """log p(token at i = t) is log 0.9 where t equals the token at i - 1, else log(0.1 / 4) (a masked left
    neighbour gives the uniform 1/5): a chain whose every value must follow from the one before it."""

    vocab_size = 6
    mask_id = MASK

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        b, length = tokens.shape
        probs = torch.full((b, length, self.vocab_size), 0.1 / 4, dtype=torch.float64)
        left = torch.cat([torch.full((b, 1), MASK), tokens[:, :-1]], dim=1)
        known = left != MASK
        probs[known] = 0.1 / 4
        probs[known.nonzero(as_tuple=True) + (left[known],)] = 0.9
        probs[~known] = 1 / 5
        probs[..., MASK] = 1e-30
        return probs.log()


def test_slot_pseudo_log_likelihood_scores_each_slot_with_it_alone_masked():
    """A sound chain (each value follows from its left neighbour) scores log 0.9 per slot; one unsound step costs
    its own slot and, through it, the next one; chunked passes give the same numbers."""
    tokens = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 2, 2, 2]])
    slots = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4]])
    score = slot_pseudo_log_likelihood(CopyLeft(), tokens, slots)
    good, bad = math.log(0.9), math.log(0.1 / 4)
    assert score[0].item() == pytest.approx(good, abs=1e-6)
    assert score[1].item() == pytest.approx((good + bad + good + good) / 4, abs=1e-6)
    chunked = slot_pseudo_log_likelihood(CopyLeft(), tokens, slots, rows_per_pass=3)
    assert torch.allclose(chunked, score)


def test_slot_pseudo_log_likelihood_masks_exactly_one_slot_per_pass_row():
    seen = []

    class Recording(CopyLeft):
        def __call__(self, tokens, **kw):
            seen.append(tokens.clone())
            return super().__call__(tokens, **kw)

    tokens = torch.tensor([[0, 1, 2, 0]])
    slot_pseudo_log_likelihood(Recording(), tokens, torch.tensor([[1, 2]]))
    rows = torch.cat(seen)
    assert rows.tolist() == [[0, MASK, 2, 0], [0, 1, MASK, 0]]


def test_answer_first_commits_the_answer_before_any_reasoning_and_changes_it():
    """The toy's answer is near-certain token 2 only after the reasoning is written; answered first, it is a coin
    flip decided by argmax (token 1), and the confidence rule otherwise writes every reasoning slot before it."""
    toy, rule = ReasoningToy(), BUILTIN_RULES["confidence"](BUILTIN_RULES["confidence"].Config())
    normal = decode(toy, toy_canvas([1, 2]).state, rule)
    first_canvas = toy_canvas([1, 2])
    first = decode(toy, first_canvas.state, rule, answer_first=first_canvas.answer)
    assert normal.commit_step[:, -1].tolist() == [R, R] and normal.tokens[:, -1].tolist() == [2, 2]
    assert first.commit_step[:, -1].tolist() == [0, 0] and first.tokens[:, -1].tolist() == [1, 1]
    assert sorted(first.commit_step[0, 1 : 1 + R].tolist()) == list(range(1, R + 1))
    assert first.nfe.tolist() == normal.nfe.tolist() == [R + 1, R + 1]


def test_answer_first_needs_one_block():
    canvas = toy_canvas([1])
    rule = BUILTIN_RULES["confidence"](BUILTIN_RULES["confidence"].Config())
    with pytest.raises(ConfigError, match="one block"):
        decode(ReasoningToy(), canvas.state, rule, schedule=BlockSchedule(None, 5), answer_first=canvas.answer)
