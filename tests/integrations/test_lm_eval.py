"""``lm_eval --model mdsample`` through lm_eval's own command line, offline, on local task YAMLs over local jsonl
data: the shipped house arithmetic model and a tiny random LLaDA built here (generate_until with chat template and
stop sequences, Monte Carlo loglikelihood), plus the estimator itself against an exact value."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("lm_eval")

from mdsample.errors import ConfigError  # noqa: E402
from mdsample.plugins.text.tasks.arithmetic import ArithmeticTask  # noqa: E402
from tests.text.test_adapters_support import tiny_llada_dir  # noqa: E402

GEN_TASK = """task: mdsample_arith
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}}}}}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs: {{until: ["\\n", "dog"], max_gen_toks: 8}}
metric_list: [{{metric: exact_match, higher_is_better: true}}]
"""
CHOICE_TASK = """task: mdsample_choice
dataset_path: json
dataset_kwargs: {{data_files: {{test: {data}}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list: [{{metric: acc, higher_is_better: true}}]
"""


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return tiny_llada_dir(tmp_path_factory.mktemp("llada"))


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    problems = ArithmeticTask(3, 2).problems(6, 0, "test")
    arith = root / "arith.jsonl"
    arith.write_text("".join(json.dumps({"question": p.prompt, "answer": p.answer}) + "\n" for p in problems))
    choice = root / "choice.jsonl"
    choice.write_text("".join(json.dumps({"question": q, "choices": ["mat", "park"], "label": 0}) + "\n"
                              for q in ("the cat sat on the", "a big red dog ran to the")))
    (root / "arith.yaml").write_text(GEN_TASK.format(data=arith))
    (root / "choice.yaml").write_text(CHOICE_TASK.format(data=choice))
    return root


def lm_eval_cli(tasks: Path, out: Path, model_args: str, names: str, *extra: str) -> dict:
    """Run lm_eval's console script offline; returns its results JSON."""
    script = Path(sys.executable).parent / "lm_eval"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "lm_eval"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(out / "cache")}
    done = subprocess.run([*command, "--model", "mdsample", "--model_args", model_args, "--tasks", names,
                           "--include_path", str(tasks), "--device", "cpu", "--batch_size", "4", "--output_path",
                           str(out), "--log_samples", *extra], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(out.rglob("results_*.json")).read_text())


def test_lm_eval_finds_the_model_in_a_fresh_interpreter():
    code = "from lm_eval.api.registry import get_model; print(get_model('mdsample').__qualname__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "MDSampleLM", done.stderr[-2000:]


def test_house_model_through_the_cli(tasks, tmp_path):
    results = lm_eval_cli(tasks, tmp_path, "sampler=klass,sampler.kl_threshold=0.01", "mdsample_arith")
    assert results["results"]["mdsample_arith"]["exact_match,none"] >= 0.8  # the house model multiplies well


def test_tiny_llada_through_the_cli(tasks, llada_dir, tmp_path):
    args = f"model={llada_dir},sampler=klass,sampler.kl_threshold=0.01,decode.steps=8,mc_num=8,mc_batch_size=4"
    results = lm_eval_cli(tasks, tmp_path, args, "mdsample_arith,mdsample_choice", "--apply_chat_template")
    assert set(results["results"]) == {"mdsample_arith", "mdsample_choice"}
    generated = [json.loads(line) for line in next(tmp_path.rglob("samples_mdsample_arith_*.jsonl")).open()]
    assert all("<|start_header_id|>assistant" in g["arguments"]["gen_args_0"]["arg_0"] for g in generated)
    assert all("dog" not in g["resps"][0][0] for g in generated)  # cut at the stop sequence
    scored = [json.loads(line) for line in next(tmp_path.rglob("samples_mdsample_choice_*.jsonl")).open()]
    assert all(float(r[0][0]) < 0 for s in scored for r in s["resps"])


@pytest.fixture(scope="module")
def lm(llada_dir):
    from mdsample.integrations.lm_eval import MDSampleLM

    return MDSampleLM(model=str(llada_dir), sampler="confidence", device="cpu", batch_size=2, mc_num=4,
                      mc_batch_size=2, greedy_check=True, **{"decode.steps": 4})


def test_one_token_estimate_is_the_exact_log_probability(lm):
    prefix, target = torch.tensor([1, 9, 10, 11]), torch.tensor([12])
    logits = lm.denoiser(torch.cat([prefix, torch.tensor([lm.text_model.mask_id])]).unsqueeze(0)).float()
    exact = logits[0, -1].log_softmax(-1)[12].item()
    assert lm._mc_loglikelihood(prefix, target) == pytest.approx(exact, rel=1e-5)


def test_generate_until_batches_and_cuts_at_stop_sequences(lm):
    requests = [SimpleNamespace(args=(ctx, {"until": ["cat"], "max_gen_toks": 4})) for ctx in ("the", "a", "dog")]
    texts = lm.generate_until(requests)
    assert len(texts) == 3 and all("cat" not in t for t in texts)
    assert lm.loglikelihood([SimpleNamespace(args=("the cat", " sat"))])[0][0] < 0


def test_unknown_model_args_are_config_errors(llada_dir):
    from mdsample.integrations.lm_eval import MDSampleLM

    with pytest.raises(ConfigError, match="unknown model_args key 'stepz'"):
        MDSampleLM(model=str(llada_dir), device="cpu", stepz=3)
    with pytest.raises(ConfigError, match="decode.stepz"):
        MDSampleLM(model=str(llada_dir), device="cpu", **{"decode.stepz": 3})
