"""The benchmark tasks: data, prompts, grading (HumanEval entry points, MBPP asserts) and whole runs on tiny
LLaDA and Dream checkpoints built here, plus the bad inputs that must exit 2 with one line."""

from __future__ import annotations

import json
import shutil

import pytest

from mdsample.cli import main
from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.text.tasks.benchmarks import BENCHMARKS, grade, load_items
from mdsample.plugins.text.tasks.sandbox import ENABLE_ENV
from tests.text.test_adapters_support import tiny_dream_dir, tiny_llada_dir

HUMANEVAL = {"task_id": "HumanEval/0", "entry_point": "add",
             "prompt": "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n",
             "canonical_solution": "    return a + b\n",
             "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"}
MBPP = {"task_id": 11, "prompt": "Write a function to square a number.", "code": "def square(x):\n    return x * x",
        "test_imports": ["import math"],
        "test_list": ["assert square(3) == 9", "assert math.isclose(square(0.5), .25)"]}
GSM8K = [{"question": "the cat sat on the mat", "answer": "#### 1,234"}, {"question": "a dog", "answer": "#### -5"}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return tiny_llada_dir(tmp_path_factory.mktemp("llada"))


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory):
    """The tiny Dream with room for the benchmark's system prompt (about 200 of its byte-level tokens)."""
    model_dir = tiny_dream_dir(tmp_path_factory.mktemp("dream"))
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 512}))
    return model_dir


def run_cli(*args) -> int:
    return main([*map(str, args), "--no-progress", "--device", "cpu", "--domain", "text"])


def test_humaneval_program_calls_the_entry_point(tmp_path):
    bench = BENCHMARKS["humaneval"]
    item = load_items(bench, str(write_jsonl(tmp_path / "he.jsonl", [HUMANEVAL])))[0]
    fenced = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nDone."
    assert bench.extract(fenced) == "def add(a, b):\n    return a + b"
    assert bench.program(item, "    return a + b").endswith("check(add)\n")
    body, wrong = "    return a + b", "    return a - b"
    graded = grade(bench, [item] * 3, [fenced, body, wrong], allow_code=True)
    assert [ok for _, ok in graded] == [True, True, False]


def test_mbpp_program_runs_its_imports_and_asserts(tmp_path):
    bench = BENCHMARKS["mbpp"]
    item = load_items(bench, str(write_jsonl(tmp_path / "mbpp.jsonl", [MBPP])))[0]
    assert "assert square(3) == 9" in item.question and item.question.endswith("[BEGIN]")
    right = "```python\ndef square(x):\n    return x ** 2\n```"
    assert [ok for _, ok in grade(bench, [item] * 3, [right, "def square(x):\n    return x * x\n[DONE] extra",
                                                      "def square(x):\n    return x + x"], allow_code=True)
            ] == [True, True, False]
    with pytest.raises(ConfigError, match="domain.allow_code_execution=true"):
        grade(bench, [item], [right], allow_code=False)


def test_local_data_jsonl_and_parquet_and_missing_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    bench = BENCHMARKS["math500"]
    rows = [{"problem": "1/2 + 0?", "solution": "It is $\\boxed{\\frac{1}{2}}$."}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "math.parquet")
    assert load_items(bench, str(tmp_path / "math.parquet"))[0].gold == "\\frac{1}{2}"
    assert bench.correct(load_items(bench, str(write_jsonl(tmp_path / "m.jsonl", rows)))[0], "0.5")
    with pytest.raises(ConfigError, match="lacks column 'answer or solution'"):
        load_items(bench, str(write_jsonl(tmp_path / "bad.jsonl", [{"problem": "x"}])))
    with pytest.raises(MissingFileError):
        load_items(bench, str(tmp_path / "absent.jsonl"))


@pytest.mark.parametrize("family", ["llada", "dream"])
def test_gsm8k_run_on_a_tiny_model(family, llada_dir, dream_dir, tmp_path):
    model = llada_dir if family == "llada" else dream_dir
    out = tmp_path / "run"
    data = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    assert run_cli("--model", model, "--task", "gsm8k", f"domain.data={data}", "-n", 2, "--sampler", "klass",
                   "domain.gen_length=8", "--steps", 8, "--out", out) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["gold"] for r in rows] == ["1234", "-5"]
    assert all({"prompt", "completion", "extracted", "gold", "correct", "nfe"} <= set(r) for r in rows)
    assert all(1 <= r["nfe"] <= 8 for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == sum(r["correct"] for r in rows) / 2 and "accuracy_stderr" in metrics


def test_humaneval_run_executes_code_when_enabled(llada_dir, tmp_path):
    out = tmp_path / "run"
    data = write_jsonl(tmp_path / "he.jsonl", [HUMANEVAL])
    assert run_cli("--model", llada_dir, "--task", "humaneval", f"domain.data={data}", "-n", 1, "--sampler",
                   "confidence", "domain.gen_length=4", "domain.allow_code_execution=true", "--out", out) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pass@1"] == metrics["accuracy"] == 0.0  # random words are no Python


def no_chat_copy(llada_dir, tmp_path):
    plain = shutil.copytree(llada_dir, tmp_path / "plain")
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    return plain


def test_bad_inputs_exit_2_with_one_line(llada_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ENABLE_ENV, raising=False)
    data = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K)
    cases = {
        "unknown text task 'gsm9k'": ["--model", llada_dir, "--task", "gsm9k"],
        "lacks column 'answer'": ["--model", llada_dir, "--task", "gsm8k",
                                  f"domain.data={write_jsonl(tmp_path / 'q.jsonl', [{'question': 'x'}])}"],
        "has no chat template": ["--model", no_chat_copy(llada_dir, tmp_path), "--task", "gsm8k",
                                 f"domain.data={data}"],
        f"domain.allow_code_execution=true or {ENABLE_ENV}=1": [
            "--model", llada_dir, "--task", "mbpp", f"domain.data={write_jsonl(tmp_path / 'm.jsonl', [MBPP])}"],
        "has 2 problems": ["--model", llada_dir, "--task", "gsm8k", f"domain.data={data}", "-n", 3,
                           "domain.gen_length=4"],
    }
    for message, args in cases.items():
        capsys.readouterr()
        assert run_cli(*args, "--out", tmp_path / "r") == 2, message
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_hub_data_goes_through_datasets_and_fails_offline_in_one_line(llada_dir, tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("datasets", reason="the hub path needs the eval extra; without it see the test below")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "mdsample.cli", "--domain", "text", "--task", "gsm8k", "--model",
                           str(llada_dir), "--device", "cpu", "--no-progress", "--out", str(tmp_path / "r")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: cannot load openai/gsm8k (main, test) through datasets")
    assert "domain.data=PATH.jsonl" in done.stderr and done.stderr.count("\n") == 1


def test_hub_data_without_datasets_names_the_extra_in_one_line(llada_dir, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails, as without mdsample[eval]
    assert run_cli("--model", llada_dir, "--task", "gsm8k", "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: task 'gsm8k' loads openai/gsm8k through `datasets`: pip install 'mdsample[eval]'")
    assert "domain.data=PATH.jsonl" in err and err.count("\n") == 1, err
