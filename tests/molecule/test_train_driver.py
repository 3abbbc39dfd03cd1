"""benchmarks/molecule_train.py's run specs: per-run overrides after ``@`` reach that run alone and name it, so that
variants of one model (the noise-schedule comparison) train side by side without sharing a directory."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from molecule_train import run_name, split_run  # noqa: E402


def test_a_plain_run_keeps_its_name_and_has_no_overrides():
    assert split_run("smiles:base") == ("smiles:base", [])
    assert run_name("smiles:base") == "smiles_base"
    assert run_name("selfies:base_deep:weights/selfies") == "selfies_base_deep_cont"


def test_overrides_after_the_at_sign_belong_to_the_run_and_name_it():
    spec = "selfies:base_deep:weights/selfies@train.noise_schedule=cosine,train.lr=4e-4"
    assert split_run(spec) == ("selfies:base_deep:weights/selfies", ["train.noise_schedule=cosine", "train.lr=4e-4"])
    assert run_name(spec) == "selfies_base_deep_cont_noise_schedule-cosine_lr-4e-4"


def test_variants_of_one_model_get_different_directories():
    linear, cosine = "smiles:base_deep:w/smiles", "smiles:base_deep:w/smiles@train.noise_schedule=cosine"
    assert run_name(linear) != run_name(cosine)
