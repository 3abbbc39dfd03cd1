"""benchmarks/reasoning_suite.py end to end at smoke scale on the CPU: every phase runs through the real commands
(train, posterior, fine-tune, sample) and the results JSON, the tables and the model archive hold what they should."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mdsample.plugins.text.tasks.chain import ChainTask

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_every_result(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reasoning_suite.py"), "--smoke", "--device",
                           "cpu", "--seeds", "0", "--keep", "0.5", "--keep-by", "trace_score", "--out", str(out),
                           "--work", str(tmp_path / "w")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "reasoning_suite.json").read_text())
    task = ChainTask()
    slots = task.reasoning_length + task.answer_length
    rows = {r["label"]: r for r in results["shipped"]["rows"]}
    assert set(rows) == {"k1", "answer_first", "k2", "k4", "med", "early_exit", "med_early_exit"}
    assert rows["k1"]["nfe_mean"] == rows["answer_first"]["nfe_mean"] == slots
    assert rows["k2"]["nfe_mean"] == math.ceil(slots / 2) and rows["k4"]["nfe_mean"] == math.ceil(slots / 4)
    assert {name: len(c["pearson"]["score"]) for name, c in results["correlation"].items()} == {"shipped": 10,
                                                                                                "base": 10}
    post = results["posterior"]
    assert post["traces"] == 48 and post["kept"] == 24  # --keep 0.5 keeps the upper half of the scores
    every = [json.loads(line) for line in (tmp_path / "w" / "posterior_all.jsonl").read_text().splitlines()]
    assert post["keep_by"] == "trace_score" and post["score_cut"] == pytest.approx(float(np.quantile(
        [r["trace_score"] for r in every], 0.5)))
    gold = [json.loads(line) for line in (tmp_path / "w" / "gold.jsonl").read_text().splitlines()]
    kept = [json.loads(line) for line in (tmp_path / "w" / "posterior.jsonl").read_text().splitlines()]
    assert [g["prompt"] for g in gold] == [k["prompt"] for k in kept]  # the gold arm trains on the same problems
    assert min(k["trace_score"] for k in kept) >= post["score_cut"]
    assert all(task.steps_right(task.parse_prompt(g["prompt"]), g["trace"]) == 1.0 for g in gold)
    arms = results["finetune"]
    assert [r["seed"] for r in arms["posterior"]] == [r["seed"] for r in arms["gold"]] == [0]
    assert results["models"]["shipped"]["steps"] == results["models"]["base"]["steps"] == 30
    with tarfile.open(out / "base_model.tar.gz") as tar:
        assert "base/config.json" in tar.getnames()
    with tarfile.open(out / "chain_model.tar.gz") as tar:
        assert {"chain/config.json", "chain/model.safetensors", "chain/vocab.json"} <= set(tar.getnames())
    tables = (out / "reasoning_suite.md").read_text()
    assert "answer first" in tables and "#### Targets" in tables and "base + gold traces" in tables
