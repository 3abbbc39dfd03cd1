"""Training the DNA house model on CPU through mdsample's generic trainer, then sampling from it."""

from __future__ import annotations

import json

import pytest
from mdsample_dna.domain import DnaDomain, DnaOptions
from mdsample_dna.motifs import LENGTH

from mdsample.cli import main
from mdsample.errors import ConfigError
from mdsample.testing import check_domain
from mdsample.train import TrainConfig, train

CFG = TrainConfig(size="tiny", steps=30, batch_size=32, lr=3e-3, warmup=5, eval_every=30, eval_batches=1,
                  log_every=10, device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train(DnaDomain(), DnaOptions(train_rows=2048), CFG, tmp_path_factory.mktemp("dna"), command="pytest")


def test_training_lowers_the_loss_and_writes_a_model_directory(model_dir):
    records = [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0]
    written = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "alphabet.json", "MODEL_CARD.md"} <= written


def test_trained_model_passes_the_conformance_kit(model_dir):
    check_domain("dna", DnaOptions(model=str(model_dir)))


def test_cli_samples_from_the_trained_model(model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--domain", "dna", "--model", str(model_dir), "--sampler", "spaced", "-n", "6", "--out", str(out),
                 "--no-progress", "--device", "cpu", "sampler.radius=3"])
    assert code == 0
    fasta = (out / "samples.fasta").read_text().splitlines()
    assert len(fasta) == 12 and all(len(seq) == LENGTH for seq in fasta[1::2])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sampler"] == "spaced" and metrics["n"] == 6 and 0.0 <= metrics["gc_mean"] <= 1.0
    assert "kmer4_js" in metrics and "valid" in capsys.readouterr().out


def test_a_model_of_another_domain_is_refused(tmp_path):
    (tmp_path / "alphabet.json").write_text('{"symbols": ["A", "B"]}')
    with pytest.raises(ConfigError, match="trained on the alphabet"):
        DnaDomain().load_denoiser(DnaOptions(model=str(tmp_path)), "cpu")
