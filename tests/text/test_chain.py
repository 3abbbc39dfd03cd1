"""The chain task: generator, checker, split, trace-fraction rows, and answer-first decoding through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mdsample.cli import main
from mdsample.errors import ConfigError
from mdsample.plugin_manager import load_domain
from mdsample.plugins.text.domain import traced
from mdsample.plugins.text.tasks.chain import ChainTask, is_test, run_chain
from mdsample.plugins.text.vocab import CharVocab
from mdsample.train import TrainConfig, train


def test_known_chains_and_their_checker():
    task = ChainTask(8)
    # 7+5=12, *3=36, -8=28, *7=196=96, +2=98, +4=102=02, -1=01, *9=09 (mod 100)
    p = task.parse_prompt("07+5*3-8*7+2+4-1*9")
    assert (p.prompt, p.reasoning, p.answer) == ("07+5*3-8*7+2+4-1*9=", "12;36;28;96;98;02;01;09", "09")
    assert task.correct(p, "09") and not task.correct(p, "9") and not task.correct(p, "90")
    wrap = ChainTask(2).parse_prompt("5-9*3")  # 5-9 = -4 = 96, *3 = 288 = 88
    assert (wrap.prompt, wrap.reasoning, wrap.answer) == ("05-9*3=", "96;88", "88")
    assert task.read("12;36;28;96;98;02;01;09#09") == ("12;36;28;96;98;02;01;09", "09")


def test_steps_right_counts_values_that_follow_from_the_one_before():
    task = ChainTask(8)
    p = task.parse_prompt("07+5*3-8*7+2+4-1*9")
    assert task.steps_right(p, p.reasoning) == 1.0
    # a wrong third value (29 instead of 28): it and the fourth (96 = 28*7, not 29*7 = 03) are unsound, the rest follow
    assert task.steps_right(p, "12;36;29;96;98;02;01;09") == 6 / 8
    assert task.steps_right(p, "12;36;29;03;05;09;08;72") == 7 / 8
    assert task.steps_right(p, "") == 0.0


@pytest.mark.parametrize("prompt", ["07+5*3", "07+5*3-8*7+2+4-1*9+1", "107+5*3-8*7+2+4-1*9", "07+0*3-8*7+2+4-1*9",
                                    "07/5*3-8*7+2+4-1*9"])
def test_bad_prompts_are_config_errors(prompt):
    with pytest.raises(ConfigError, match="chain prompt"):
        ChainTask(8).parse_prompt(prompt)


def test_ops_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="domain.ops"):
        ChainTask(1)


def test_generator_is_deterministic_and_prefix_consistent():
    task = ChainTask(8)
    first = task.problems(50, seed=0)
    assert task.problems(50, seed=0) == first
    assert task.problems(20, seed=0) == first[:20]
    assert task.problems(50, seed=1) != first
    assert all(task.parse_prompt(p.prompt) == p for p in first)  # the generator agrees with the solver


def test_splits_are_disjoint_and_fixed_by_the_hash():
    task = ChainTask(8)
    test = {p.prompt for p in task.problems(2000, seed=0)}
    train = {p.prompt for p in task.problems(20000, seed=0, split="train")}
    assert test.isdisjoint(train) and len(test) == 2000
    rng = np.random.default_rng(5)
    start, op, digit = rng.integers(0, 100, 20000), rng.integers(0, 3, (20000, 8)), rng.integers(1, 10, (20000, 8))
    assert 0.08 < is_test(start, op, digit).mean() < 0.12
    values = run_chain(start, op, digit)
    assert values.min() >= 0 and values.max() < 100


def test_training_rows_are_the_layout_of_the_problems():
    task, vocab = ChainTask(6), CharVocab()
    rows = task.training_rows(300, 0, vocab)
    expected = np.array([task.row_ids(p, vocab) for p in task.problems(300, 0, split="train")])
    assert rows.shape == (300, task.length) and (rows == expected).all()
    assert vocab.decode(rows[0]).count("#") == 1


def test_trace_fraction_hides_reasoning_of_the_hashed_problems_only():
    domain, task, vocab = load_domain("text"), ChainTask(), CharVocab()
    data = domain.train_data(domain.Options(task="chain", train_rows=4000, trace_fraction=0.25))
    full = torch.from_numpy(task.training_rows(4000, 0, vocab))
    keep = traced(full[:, : task.frozen_prefix], 0.25)
    slots = task.reasoning_slots()
    hidden = (data.train[:, slots] == vocab.mask_id).all(dim=1)
    assert torch.equal(hidden, ~keep)
    assert 0.2 < keep.float().mean() < 0.3
    assert torch.equal(data.train[keep], full[keep])  # traced problems keep their gold rows
    outside = torch.ones(task.length, dtype=torch.bool)
    outside[slots] = False
    assert torch.equal(data.train[:, outside], full[:, outside])  # prompt, delimiter and answer always observed


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory):
    domain = load_domain("text")
    cfg = TrainConfig(size="tiny", steps=2, batch_size=8, device="cpu", dtype="fp32", eval_every=2, eval_batches=1,
                      warmup=1)
    return train(domain, domain.Options(task="chain", train_rows=64), cfg, tmp_path_factory.mktemp("chain"))


def test_answer_first_run_commits_the_answer_slots_first(chain_model, tmp_path):
    out = tmp_path / "run"
    assert main(["--domain", "text", "--task", "chain", "--model", str(chain_model), "--sampler", "confidence",
                 "-n", "3", "--out", str(out), "--trace", "--no-progress", "--device", "cpu",
                 "decode.answer_first=true"]) == 0
    order = torch.load(out / "trace.pt")["commit_step"]
    task = ChainTask()
    answer = order[:, task.length - task.answer_length :]
    reasoning = order[:, task.reasoning_slots()]
    assert sorted(answer[0].tolist()) == [0, 1]
    assert (reasoning.min(dim=1).values > answer.max(dim=1).values).all()
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(r["gold"] == task.parse_prompt(r["prompt"]).answer for r in rows)


def test_answer_first_needs_answer_slots(tmp_path, capsys):
    assert main(["--domain", "text", "--task", "sudoku", "-n", "1", "--out", str(tmp_path / "s"), "--no-progress",
                 "--device", "cpu", "decode.answer_first=true"]) == 2
    assert "answer_first needs answer slots" in capsys.readouterr().err


def test_posterior_traces_for_chain_keep_the_answer_and_fill_only_the_reasoning(chain_model, tmp_path):
    out = tmp_path / "traces.jsonl"
    assert main(["posterior", "--task", "chain", "--model", str(chain_model), "-n", "4", "--out", str(out),
                 "--device", "cpu", "--sampler", "confidence", "progress=false"]) == 0
    task = ChainTask()
    for r in map(json.loads, out.read_text().splitlines()):
        assert r["answer"] == task.parse_prompt(r["prompt"]).answer
        assert r["nfe"] == task.reasoning_length and len(r["trace"]) == task.reasoning_length


def test_posterior_refuses_a_task_without_reasoning_slots(tmp_path, capsys):
    assert main(["posterior", "--task", "sudoku", "--out", str(tmp_path / "t.jsonl"), "--device", "cpu"]) == 2
    assert "arithmetic, chain" in capsys.readouterr().err
