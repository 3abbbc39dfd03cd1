"""Studies over the benchmark tasks: the shipped ``reasoning`` study's cells, and a small study run end to end on a
tiny LLaDA with grid bundles and per-task sampler settings."""

from __future__ import annotations

import json

import pytest

from mdsample.cli import main
from mdsample.errors import ConfigError
from mdsample.study import expand, load_study
from mdsample.study.command import study_file
from mdsample.study.spec import parse_study
from tests.text.test_adapters_support import tiny_llada_dir
from tests.text.test_benchmarks import GSM8K, write_jsonl

LLADA, DREAM = "GSAI-ML/LLaDA-8B-Instruct", "Dream-org/Dream-v0-Instruct-7B"


def test_the_shipped_reasoning_study_has_the_klass_protocol():
    cells = expand(load_study(study_file("reasoning")), {"device": "cpu"})
    assert len(cells) == 4 * 3 * 2  # tasks x samplers x models
    klass = {(c.task, c.config.domain.model): (c.config.sampler.conf_threshold, c.config.sampler.kl_threshold)
             for c in cells if c.sampler == "klass"}
    assert klass[("gsm8k", LLADA)] == (0.6, 0.015) and klass[("math500", DREAM)] == (0.9, 0.005)
    assert klass[("humaneval", DREAM)] == (0.8, 0.001) and klass[("mbpp", LLADA)] == (0.7, 0.01)
    for cell in cells:
        llada = cell.config.domain.model == LLADA
        assert cell.config.decode.block_length == (64 if llada else None)
        decode = cell.config.decode
        assert (decode.steps, cell.config.domain.gen_length, decode.temperature) == (256, 256, 0)
    assert {c.task: c.config.n for c in cells} == {"gsm8k": 1319, "math500": 500, "humaneval": 164, "mbpp": 257}


def test_a_sampler_task_that_no_domain_runs_is_an_error():
    raw = {"domains": {"text": {"quality": {"metric": "accuracy"}, "tasks": ["gsm8k"]}},
           "samplers": {"klass": {"tasks": {"mbpp": {"overrides": {"sampler.kl_threshold": 0.1}}}}}}
    with pytest.raises(ConfigError, match="samplers.klass.tasks names 'mbpp'"):
        expand(parse_study(raw, "s.yaml", "s"))
    raw["samplers"]["klass"] = {"grid": {"model": [{"domain.model": "a"}, 3]}}
    with pytest.raises(ConfigError, match="mixes mappings"):
        parse_study(raw, "s.yaml", "s")


def test_a_benchmark_study_runs_on_a_tiny_llada(tmp_path):
    model = tiny_llada_dir(tmp_path / "llada")
    data = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    study = tmp_path / "study.yaml"
    study.write_text(json.dumps({
        "name": "tiny", "n": 2, "overrides": {"domain.model": str(model), "domain.data": str(data),
                                             "domain.gen_length": 8, "decode.steps": 8},
        "domains": {"text": {"quality": {"metric": "accuracy"}, "tasks": ["gsm8k"]}},
        "samplers": {"confidence": {}, "klass": {"tasks": {"gsm8k": {"grid": {"setting": [
            {"sampler.conf_threshold": 0.6, "sampler.kl_threshold": 0.015},
            {"sampler.conf_threshold": 0.9, "sampler.kl_threshold": 0.001}]}}}}}}))
    assert main(["study", str(study), "--out", str(tmp_path / "out"), "--device", "cpu", "--no-progress"]) == 0
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all("accuracy" in r["metrics"] for r in records)
    assert {r["config"]["sampler"].get("kl_threshold") for r in records} == {None, 0.015, 0.001}


def test_torchrun_shards_a_code_benchmark_like_one_process(tmp_path):
    """2 gloo processes decode and grade (in the sandbox) their own batches; rank 0's results equal one process's."""
    import os
    import subprocess
    import sys

    from tests.text.test_benchmarks import HUMANEVAL

    model = tiny_llada_dir(tmp_path / "llada")
    rows = [{**HUMANEVAL, "task_id": f"HumanEval/{i}"} for i in range(5)]
    data = write_jsonl(tmp_path / "he.jsonl", rows)
    study = tmp_path / "study.yaml"
    study.write_text(json.dumps({
        "name": "he", "n": 5, "overrides": {"domain.model": str(model), "domain.data": str(data), "batch_size": 2,
                                            "domain.gen_length": 4, "domain.allow_code_execution": True},
        "domains": {"text": {"quality": {"metric": "pass@1"}, "tasks": ["humaneval"]}}, "samplers": ["klass"]}))

    def samples(out):
        key = json.loads((out / "results.jsonl").read_text())["key"]
        return (out / "cells" / key / "samples.jsonl").read_text(), key

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
               "mdsample.cli", "study", str(study), "--out", str(tmp_path / "two"), "--device", "cpu", "--no-progress"]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert main(["study", str(study), "--out", str(tmp_path / "one"), "--device", "cpu", "--no-progress"]) == 0
    two, one = samples(tmp_path / "two"), samples(tmp_path / "one")
    assert two == one and len(two[0].splitlines()) == 5
    assert json.loads((tmp_path / "two" / "results.jsonl").read_text())["world_size"] == 2
