"""The text domain on hub-style models (a tiny LLaDA-like checkpoint built here): free prompts and task templates."""

from __future__ import annotations

import json

import pytest

from mdsample.cli import main
from tests.text.test_adapters_support import tiny_llada_dir


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return tiny_llada_dir(tmp_path_factory.mktemp("llada"))


def run_cli(*args: str) -> int:
    return main([*args, "--no-progress", "--device", "cpu", "domain.trust_remote_code=true"])


def test_free_prompt_generation(llada_dir, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(llada_dir), "--prompt", "the cat sat", "-n", "3",
                   "--sampler", "confidence", "domain.gen_length=6", "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["nfe"] == 6 and r["prompt"] == "the cat sat" for r in rows)
    assert "mean_chars" in json.loads((out / "metrics.json").read_text())


def test_task_template_with_early_exit(llada_dir, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(llada_dir), "--task", "arithmetic", "-n", "2",
                   "--sampler", "klass", "domain.reasoning_length=6", "domain.answer_length=3", "--early-exit", "1e6",
                   "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(r["nfe"] == 1 and r["exited"] and r["gold"] for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["early_exit_rate"] == 1.0 and 0.0 <= metrics["accuracy"] <= 1.0


def test_hub_model_needs_a_prompt_or_a_task(llada_dir, tmp_path, capsys):
    assert run_cli("--domain", "text", "--model", str(llada_dir), "-n", "1", "--out", str(tmp_path / "r")) == 2
    assert "--prompt TEXT" in capsys.readouterr().err


def test_a_dream_checkpoint_s_bpe_vocab_json_is_not_taken_for_the_house_vocabulary(tmp_path):
    from tests.text.test_adapters_support import tiny_dream_dir

    out = tmp_path / "run"
    assert main(["--domain", "text", "--model", str(tiny_dream_dir(tmp_path / "dream")), "--prompt", "the cat",
                 "-n", "1", "--sampler", "confidence", "domain.gen_length=4", "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0
    assert json.loads((out / "samples.jsonl").read_text().splitlines()[0])["nfe"] == 4


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_the_native_module_s_kv_cache_and_captured_step_reach_the_command_line(llada_dir, tmp_path, cache):
    """The hub wrapper shows the native module's cache calls, capturability and compile switch (a CUDA run then
    caches, captures and keeps its graphs from batch to batch); on the CPU ``capture=on`` runs the static step."""
    import torch

    from mdsample.core.capture import memory_of
    from mdsample.core.denoiser import CachingDenoiser
    from mdsample.plugins.text.adapters.loader import load_text_model
    from mdsample.plugins.text.hub import hub_denoiser

    denoiser = hub_denoiser(load_text_model(str(llada_dir), trust_remote_code=True, device=torch.device("cpu")))
    assert isinstance(denoiser, CachingDenoiser) and denoiser.capturable and denoiser.compilable
    assert callable(denoiser.peek)
    assert memory_of(denoiser) == memory_of(denoiser.text_model.denoiser) != ()  # kept graphs see its weights
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(llada_dir), "--prompt", "the cat sat", "-n", "4",
                   "batch_size=2", "--sampler", "klass", "domain.gen_length=6", "decode.block_length=3",
                   f"decode.cache={cache}", "decode.capture=on", "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r["nfe"] >= 6 for r in rows)
