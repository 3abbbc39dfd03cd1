"""Posterior traces end to end: answers stay frozen, scores are the answer log-likelihood and the trace's
step-checking pseudo-likelihood, fine-tuning reads them."""

from __future__ import annotations

import json

import torch

from mdsample.cli import main
from mdsample.core.infill import answer_log_likelihood, slot_pseudo_log_likelihood
from mdsample.models.house import load_house_denoiser
from mdsample.plugins.text.domain import traced
from mdsample.plugins.text.tasks.arithmetic import ArithmeticTask
from mdsample.plugins.text.vocab import CharVocab
from tests.text.test_text_domain import tiny_models  # noqa: F401  (module fixture)


def test_posterior_traces_keep_answers_and_score_them(tiny_models, tmp_path):  # noqa: F811
    out = tmp_path / "traces.jsonl"
    model = str(tiny_models["arithmetic"])
    assert main(["posterior", "--model", model, "-n", "6", "--out", str(out), "--device", "cpu",
                 "decode.temperature=1", "domain.trace_fraction=0.5", "progress=false"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6
    task, vocab = ArithmeticTask(), CharVocab()
    for r in records:
        assert r["answer"] == str(eval(r["prompt"][:-1]))
        assert r["nfe"] == task.reasoning_length  # only the reasoning is filled, one slot per step
    prompts = torch.tensor([[0] * (7 - len(r["prompt"])) + vocab.encode(r["prompt"]) for r in records])
    assert not traced(prompts, 0.5).any()  # only problems such a model saw without reasoning
    # the score is the mean answer log-likelihood given the trace, recomputed here from the rows
    denoiser = load_house_denoiser(model)
    rows = torch.tensor([task.row_ids(task.parse_prompt(r["prompt"]), vocab, r["trace"]) for r in records])
    answer = torch.arange(task.length - task.answer_length, task.length).expand(len(records), -1)
    expected = answer_log_likelihood(denoiser, rows, answer, rows[:, -task.answer_length :])
    assert torch.allclose(expected, torch.tensor([r["score"] for r in records]), atol=1e-5)
    slots = task.reasoning_slots()
    reasoning = torch.arange(slots.start, slots.stop).expand(len(records), -1)
    expected_trace = slot_pseudo_log_likelihood(denoiser, rows, reasoning)
    assert torch.allclose(expected_trace, torch.tensor([r["trace_score"] for r in records]), atol=1e-5)
    assert (expected_trace < 0).all()


def test_fine_tuning_on_filtered_traces(tiny_models, tmp_path, capsys):  # noqa: F811
    traces = tmp_path / "traces.jsonl"
    model = str(tiny_models["arithmetic"])
    assert main(["posterior", "--model", model, "-n", "8", "--out", str(traces), "--device", "cpu",
                 "progress=false"]) == 0
    scores = sorted(json.loads(line)["score"] for line in traces.read_text().splitlines())
    common = ["train", "--domain", "text", "--task", "arithmetic", "--init", model, "--data", str(traces),
              "train.size=tiny", "train.steps=2", "train.device=cpu", "train.batch_size=4", "train.eval_every=2",
              "domain.train_rows=40", "train.warmup=1"]
    assert main([*common, "--out", str(tmp_path / "ft"), f"domain.min_score={scores[4]}"]) == 0
    assert (tmp_path / "ft" / "model.safetensors").is_file()
    assert main([*common, "--out", str(tmp_path / "none"), f"domain.min_score={scores[-1] + 1}"]) == 2
    assert "keeps 0 traces" in capsys.readouterr().err
