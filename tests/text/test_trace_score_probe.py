"""benchmarks/trace_score_probe.py end to end on the CPU at toy scale: posterior traces of the shipped chain model,
then the four fine-tuning arms (the numbers mean nothing; the plumbing and the bookkeeping are what it checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mdsample.cli import main
from mdsample.plugins.text.domain import WEIGHTS_DIR
from mdsample.plugins.text.tasks.chain import ChainTask

ROOT = Path(__file__).resolve().parents[2]


def test_probe_reports_score_quality_and_every_arm(tmp_path):
    base = str(WEIGHTS_DIR / "chain")
    traces = tmp_path / "post.jsonl"
    assert main(["posterior", "--task", "chain", "--model", base, "-n", "8", "--out", str(traces), "--device", "cpu",
                 "domain.trace_fraction=0.1", "progress=false"]) == 0
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "trace_score_probe.py"), "--base", base,
                           "--traces", str(traces), "--work", str(tmp_path / "w"), "--out", str(out), "--steps", "2",
                           "--batch-size", "4", "--n-eval", "8"], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(out.read_text())
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    task = ChainTask()
    exact = [r["trace"] == task.parse_prompt(r["prompt"]).reasoning for r in records]
    assert result["traces"] == 8 and result["exact_all"] == pytest.approx(sum(exact) / 8)
    assert {name: arm["n"] for name, arm in result["arms"].items()} == {"post_all": 8, "post_top25": 2,
                                                                      "gold_all": 8, "gold_top25": 2}
    assert all(0 <= arm["accuracy"] <= 1 for arm in result["arms"].values()) and 0 <= result["base"] <= 1
    gold = [json.loads(line) for line in (tmp_path / "w" / "gold_all.jsonl").read_text().splitlines()]
    assert all(task.steps_right(task.parse_prompt(g["prompt"]), g["trace"]) == 1.0 for g in gold)
