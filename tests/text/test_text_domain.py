"""The text domain end to end on tiny models trained here: CLI runs, outputs, early exit, errors."""

from __future__ import annotations

import json

import pytest
import torch

from mdsample.cli import main
from mdsample.plugin_manager import load_domain
from mdsample.train import TrainConfig, train


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny house models for both tasks (a few CPU steps: the point is the plumbing, not the accuracy)."""
    domain = load_domain("text")
    out = {}
    for task in ("arithmetic", "sudoku"):
        options = domain.Options(task=task, train_rows=512)
        cfg = TrainConfig(size="tiny", steps=4, batch_size=16, device="cpu", dtype="fp32", eval_every=4,
                          eval_batches=1, warmup=1)
        out[task] = train(domain, options, cfg, tmp_path_factory.mktemp(task))
    return out


def run_cli(*args: str) -> int:
    return main([*args, "--no-progress", "--device", "cpu"])


def test_arithmetic_run_writes_jsonl_and_decode_order(tiny_models, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--task", "arithmetic", "--model", str(tiny_models["arithmetic"]),
                   "--sampler", "confidence", "-n", "5", "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    assert {"prompt", "completion", "reasoning", "answer", "gold", "correct", "nfe", "exited"} <= set(rows[0])
    assert all(r["gold"] == str(eval(r["prompt"][:-1])) for r in rows)
    assert (out / "decode_order.png").stat().st_size > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == sum(r["correct"] for r in rows) / 5
    assert metrics["nfe_mean"] == 38 + 5  # reasoning + answer slots, one per step; the delimiter is given


def test_early_exit_cuts_nfe_and_is_recorded(tiny_models, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(tiny_models["arithmetic"]), "--sampler", "confidence", "-n", "4",
                   "--out", str(out), "--early-exit", "1000") == 0  # any bound is below 1000 nats: exit at step 1
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(r["nfe"] == 1 and r["exited"] for r in rows)
    assert all("_" not in r["answer"] and r["reasoning"].count("_") >= 37 for r in rows)
    assert json.loads((out / "metrics.json").read_text())["early_exit_rate"] == 1.0


def test_sudoku_with_prompt_keeps_givens(tiny_models, tmp_path):
    from tests.text.test_tasks import PUZZLE

    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--task", "sudoku", "--model", str(tiny_models["sudoku"]), "--sampler", "klass",
                   "-n", "2", "--prompt", PUZZLE, "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for r in rows:
        assert len(r["answer"]) == 81
        assert all(g == "." or g == a for g, a in zip(PUZZLE, r["answer"], strict=True))


@pytest.mark.parametrize("args, message", [
    (["--task", "poetry"], "text task"),
    (["--task", "arithmetic", "--prompt", "12345*6"], "arithmetic prompt"),
    (["--task", "sudoku", "--prompt", "12"], "81 characters"),
    (["--class", "A"], "no classes"),
    (["--task", "sudoku", "--early-exit", "0.1"], "answer slots"),
])
def test_bad_requests_are_one_line_errors(tiny_models, tmp_path, capsys, args, message):
    task = "sudoku" if "sudoku" in args else "arithmetic"
    code = run_cli("--domain", "text", "--model", str(tiny_models[task]), "-n", "1", "--out", str(tmp_path / "r"),
                   *args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_model_trained_for_another_layout_is_refused(tiny_models, tmp_path, capsys):
    code = run_cli("--domain", "text", "--model", str(tiny_models["arithmetic"]), "domain.a_digits=2", "-n", "1",
                   "--out", str(tmp_path / "r"))
    assert code == 2 and "trained on canvases" in capsys.readouterr().err


def test_trace_fraction_hides_reasoning_as_unobserved():
    domain = load_domain("text")
    data = domain.train_data(domain.Options(task="arithmetic", train_rows=400, trace_fraction=0.25))
    slots = slice(7, 7 + 38)
    hidden = (data.train[:, slots] == data.mask_id).all(dim=1)
    assert 0.15 < hidden.float().mean().item() < 0.35 or 0.65 < hidden.float().mean().item() < 0.85
    assert not (data.train[~hidden][:, slots] == data.mask_id).any()
    assert torch.equal(data.train[hidden][:, -5:] != data.mask_id, torch.ones_like(data.train[hidden][:, -5:]).bool())
