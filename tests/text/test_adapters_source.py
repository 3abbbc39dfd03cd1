"""Finding a --model: local paths, hub ids through the huggingface_hub cache (offline), family detection, errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample.plugins.text.adapters import detect_family, load_text_model
from tests.text.test_adapters_support import tiny_llada_dir

CPU = torch.device("cpu")


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """An empty huggingface_hub cache with the network switched off; returns the cache directory."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_a_hub_id_resolves_through_the_local_hub_cache(offline_hub, tmp_path):
    source = tiny_llada_dir(tmp_path / "source")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = offline_hub / "models--tiny-org--tiny-llada"
    shutil.copytree(source, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    model = load_text_model("tiny-org/tiny-llada", trust_remote_code=False, device=CPU)
    local = load_text_model(str(source), trust_remote_code=False, device=CPU)
    tokens = torch.randint(0, 20, (1, 7))
    assert model.family == "llada"
    torch.testing.assert_close(model.denoiser(tokens), local.denoiser(tokens))


def test_an_unknown_hub_id_offline_is_a_missing_file(offline_hub):
    with pytest.raises(MissingFileError, match="could not be fetched from the hub"):
        load_text_model("tiny-org/absent", trust_remote_code=False, device=CPU)


def test_local_path_errors(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        load_text_model(str(tmp_path / "nowhere"), trust_remote_code=False, device=CPU)
    with pytest.raises(MissingFileError, match="no config.json"):
        load_text_model(str(tmp_path), trust_remote_code=False, device=CPU)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a JSON object"):
        load_text_model(str(tmp_path), trust_remote_code=False, device=CPU)


def test_unknown_implementation_is_rejected(tmp_path):
    with pytest.raises(UnknownChoiceError, match="native, remote"):
        load_text_model(str(tmp_path), trust_remote_code=False, device=CPU, impl="fast")


@pytest.mark.parametrize(
    ("config", "family"),
    [
        ({"model_type": "llada", "architectures": ["LLaDAModelLM"]}, "llada"),
        ({"architectures": ["LLaDAMoeModelLM"]}, "llada"),
        ({"model_type": "Dream", "architectures": ["DreamModel"]}, "dream"),
        ({"model_type": "bert", "architectures": ["BertForMaskedLM"]}, "masked_lm"),
        ({"model_type": "modernbert"}, "masked_lm"),
        ({"model_type": "mystery", "auto_map": {"AutoModelForMaskedLM": "m.MysteryForMaskedLM"}}, "masked_lm"),
        ({"model_type": "llada2_moe", "architectures": ["LLaDA2MoeModelLM"]}, "llada2"),
        ({"architectures": ["LLaDA2MoeModelLM"]}, "llada2"),
        ({"model_type": "diffusion_gemma", "architectures": ["DiffusionGemmaForBlockDiffusion"]}, "diffusion_gemma"),
    ],
)
def test_family_detection(config, family):
    assert detect_family(config) == family


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "not a text model mdsample can sample"),
        ({"model_type": "bert", "architectures": ["BertForSequenceClassification"]}, "DiffusionGemma or a masked LM"),
        ({"model_type": "mamba", "architectures": ["MambaForCausalLM"]}, "not a text model mdsample can sample"),
    ],
)
def test_unsupported_families_are_config_errors(config, message):
    with pytest.raises(ConfigError, match=message):
        detect_family(config)


def test_a_masked_lm_with_its_own_code_needs_trust(tmp_path):
    config = {"model_type": "mystery", "architectures": ["MysteryForMaskedLM"],
              "auto_map": {"AutoModelForMaskedLM": "modeling_mystery.MysteryForMaskedLM"}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="domain.trust_remote_code=true"):
        load_text_model(str(tmp_path), trust_remote_code=False, device=CPU)
