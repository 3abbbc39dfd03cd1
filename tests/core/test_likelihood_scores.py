"""Decode-order likelihoods (multi-token error) and partial-trace score correlations on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdsample.core import BlockSchedule, TokenChooser, decode
from mdsample.core.infill import infill_canvas
from mdsample.core.likelihood import order_log_likelihood
from mdsample.core.rules import BUILTIN_RULES
from mdsample.core.state import MaskedState
from mdsample.core.trace_scores import AnswerScoreRecorder, correlation_by_progress, pearson
from tests.core.toys import MixingDenoiser, ProductDenoiser


def sampled(toy, steps: int, seed: int = 0):
    state = MaskedState.blank(3, 12, toy.mask_id, prompt=torch.tensor([1, 2]))
    rule = BUILTIN_RULES["confidence"](BUILTIN_RULES["confidence"].Config())
    g = torch.Generator().manual_seed(seed)
    return decode(toy, state, rule, schedule=BlockSchedule(steps), chooser=TokenChooser(1.0), generator=g)


def test_product_model_has_no_multi_token_error():
    logits = torch.randn(1, 14, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    toy = ProductDenoiser(logits, mask_id=11)
    result = sampled(toy, steps=3)
    q = order_log_likelihood(toy, result.tokens, result.commit_step, parallel=True)
    p = order_log_likelihood(toy, result.tokens, result.commit_step, parallel=False)
    allowed = logits[0, :, :11].log_softmax(-1)
    by_hand = allowed[2:].expand(3, -1, -1).gather(-1, result.tokens[:, 2:].unsqueeze(-1)).squeeze(-1).sum(dim=1)
    assert torch.allclose(q, by_hand) and torch.allclose(p, by_hand)


def test_one_token_per_step_is_its_own_sequential_order():
    toy = MixingDenoiser(vocab=12, length=14, seed=2)
    result = sampled(toy, steps=12)
    q = order_log_likelihood(toy, result.tokens, result.commit_step, parallel=True)
    p = order_log_likelihood(toy, result.tokens, result.commit_step, parallel=False)
    assert torch.allclose(q, p)


def test_parallel_steps_differ_from_their_sequential_order():
    toy = MixingDenoiser(vocab=12, length=14, seed=2)
    result = sampled(toy, steps=3)
    q = order_log_likelihood(toy, result.tokens, result.commit_step, parallel=True)
    p = order_log_likelihood(toy, result.tokens, result.commit_step, parallel=False)
    assert not torch.allclose(q, p)
    assert toy.calls > 0


def test_pearson_and_stagewise_correlation_on_a_constructed_table():
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0])) == pytest.approx(0.866, abs=1e-3)
    assert np.isnan(pearson(np.array([1.0, 1.0]), np.array([0.0, 1.0])))
    # 4 rows, 2 steps each; at stage 1.0 the score separates correct rows exactly, at stage 0.5 it is reversed
    table = np.array([
        # row, step, progress, score, h_ub, reasoning
        [0, 1, 0.5, 1.0, 0.1, 0.5], [0, 2, 1.0, -1.0, 0.5, 1.0],
        [1, 1, 0.5, 1.0, 0.1, 0.5], [1, 2, 1.0, -1.0, 0.5, 1.0],
        [2, 1, 0.5, -1.0, 0.5, 0.5], [2, 2, 1.0, 1.0, 0.1, 1.0],
        [3, 1, 0.5, -1.0, 0.5, 0.5], [3, 2, 1.0, 1.0, 0.1, 1.0],
    ])
    correct = np.array([0, 0, 1, 1])
    out = correlation_by_progress(table, correct, np.array([0.5, 1.0]))
    assert out["score"] == pytest.approx([-1.0, 1.0])
    assert out["neg_h_ub"] == pytest.approx([-1.0, 1.0])
    assert np.isnan(out["reasoning"]).all()  # every row has decoded the same fraction at each stage


def test_recorder_scores_every_step_without_costing_nfe():
    toy = MixingDenoiser(vocab=12, length=16, seed=4)
    canvas = infill_canvas([[1, 2], [3, 4]], reasoning_length=8, delimiter=[10], answer_length=3, mask_id=11,
                           pad_id=0)
    gold = torch.tensor([[1, 2, 3], [4, 5, 6]])
    recorder = AnswerScoreRecorder(toy, canvas.answer, gold, canvas.reasoning)
    rule = BUILTIN_RULES["confidence"](BUILTIN_RULES["confidence"].Config())
    result = decode(toy, canvas.state, rule, callbacks=[recorder])
    table = recorder.table(result.nfe)
    assert len(table) == int(result.nfe.sum())
    assert (table[:, 2] <= 1.0).all() and np.allclose(table[table[:, 1] == result.nfe[0].item()][:, 2], 1.0)
    assert (np.diff(table[table[:, 0] == 0][:, 5]) >= 0).all()  # reasoning only fills up
    assert (table[:, 3] <= 0).all() and (table[:, 4] >= 0).all()
