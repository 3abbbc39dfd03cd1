"""The trainer and the house model end to end on CPU: a tiny model learns a toy pattern, saves, and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from repeat_domain import BOS, MASK, PAD, VOCAB, RepeatDomain
from safetensors.torch import load_file

from mdsample.domain import DomainOptions
from mdsample.errors import MissingFileError
from mdsample.models.house import house_config, load_house_denoiser, save_house_model, sha256_file
from mdsample.train import TrainConfig, lr_factor, train

LENGTH = 16


# 60 steps: after 30 the loss was 0.60-0.66 of its first value here (six seeds) but 0.72 on an H200 host's CPU
# (torch 2.11, transformers 5.17), against the 0.7 asked; after 60 it is 0.29-0.36 here, far from both bounds.
CFG = TrainConfig(
    size="tiny", steps=60, batch_size=64, lr=1e-2, warmup=5, eval_every=20, eval_batches=4, log_every=5, device="cpu"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train(RepeatDomain(), DomainOptions(), CFG, tmp_path_factory.mktemp("run"), command="pytest")


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_training_decreases_loss(run):
    records = _log(run)
    losses = [r["loss"] for r in records if "loss" in r]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    assert records[-1]["step"] == CFG.steps and len(vals) == 3
    assert losses[-1] < 0.7 * losses[0]
    assert vals[-1] < 0.8 * vals[0]
    assert all(r["tokens_per_s"] > 0 for r in records if "tokens_per_s" in r)


def test_saved_directory_and_card(run):
    weights = run / "model.safetensors"
    assert {"config.json", "model.safetensors", "vocab.txt", "MODEL_CARD.md", "train_log.jsonl"} <= {
        p.name for p in run.iterdir()
    }
    card = (run / "MODEL_CARD.md").read_text()
    assert f"sha256: `{sha256_file(weights)}`" in card
    assert "`pytest`" in card and f"steps: {CFG.steps} of {CFG.steps}" in card and "linear noise schedule" in card
    assert all(t.dtype == torch.float16 for t in load_file(weights).values())


def test_fp16_weights_round_trip_bit_identically(run, tmp_path):
    stored = load_file(run / "model.safetensors")
    den = load_house_denoiser(run)
    loaded = den.model.state_dict()
    for name, tensor in stored.items():
        assert loaded[name].dtype == torch.float32
        assert torch.equal(loaded[name], tensor.float()), name
    save_house_model(den.model, tmp_path)  # fp16 -> fp32 -> fp16 is exact
    again = load_file(tmp_path / "model.safetensors")
    assert stored.keys() == again.keys()
    assert all(torch.equal(stored[k], again[k]) for k in stored)


def test_load_house_denoiser_gives_logits(run):
    den = load_house_denoiser(run, device="cpu")
    assert (den.mask_id, den.pad_id, den.vocab_size) == (MASK, PAD, VOCAB)
    assert not den.model.training
    tokens = torch.full((3, LENGTH), MASK)
    tokens[:, 0] = BOS
    logits = den(tokens)
    assert logits.shape == (3, LENGTH, VOCAB) and logits.dtype == torch.float32
    assert not logits.requires_grad
    assert torch.equal(logits, den(tokens))
    half = load_house_denoiser(run, dtype=torch.float16)
    assert half.model.dtype == torch.float16


def test_trained_model_fills_in_the_motif(run):
    den = load_house_denoiser(run)
    motif = torch.tensor([4, 7, 2])
    row = torch.cat([torch.tensor([BOS]), motif.repeat(5)])
    tokens = row.clone()
    tokens[7] = MASK  # position 7 holds motif[0] (positions 1, 4, 7, ... hold motif[0])
    assert den(tokens[None])[0, 7].argmax().item() == motif[0].item()


def test_missing_model_is_an_actionable_error(tmp_path):
    with pytest.raises(MissingFileError, match="mdsample train"):
        load_house_denoiser(tmp_path / "nope")


def test_max_minutes_stops_cleanly(tmp_path):
    cfg = TrainConfig(**{**CFG.__dict__, "steps": 1000, "max_minutes": 0.0})
    out = train(RepeatDomain(), DomainOptions(), cfg, tmp_path)
    assert _log(out)[-1]["step"] == 1
    assert "steps: 1 of 1000" in (out / "MODEL_CARD.md").read_text()
    assert load_house_denoiser(out)(torch.ones(1, LENGTH, dtype=torch.long)).shape == (1, LENGTH, VOCAB)


def test_cosine_noise_schedule_trains_and_says_so(tmp_path):
    cfg = TrainConfig(**{**CFG.__dict__, "noise_schedule": "cosine"})
    out = train(RepeatDomain(), DomainOptions(), cfg, tmp_path)
    losses = [r["loss"] for r in _log(out) if "loss" in r]
    assert losses[-1] < 0.7 * losses[0]
    assert "cosine noise schedule" in (out / "MODEL_CARD.md").read_text()


def test_lr_schedule_warms_up_then_decays_to_floor():
    cfg = TrainConfig(steps=100, warmup=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.55)
    assert lr_factor(100, cfg) == pytest.approx(0.1)


def test_house_config_sizes_fit_the_budget():
    from mdsample.models.house import build_house_model

    small = build_house_model(house_config(2048, 2047, 0, 128, "small"))
    assert sum(p.numel() for p in small.parameters()) * 2 <= 8_000_000
    assert all(t == "full_attention" for t in small.config.layer_types)
    tiny = build_house_model(house_config(VOCAB, MASK, PAD, LENGTH, "tiny"))
    assert 50_000 < sum(p.numel() for p in tiny.parameters()) < 150_000
