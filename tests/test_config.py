"""Config resolution: the merge order of the layers, dotlist overrides and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mdsample.config import load_yaml, nest, parse_dotlist, resolve_config, save_config
from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_package_and_structured_defaults(toy_plugins):
    cfg = resolve_config("toy", "confidence")
    top = (cfg.seed, cfg.device, cfg.batch_size, cfg.out, cfg.progress, cfg.trace)
    assert top == (0, "auto", 256, None, True, False)
    assert cfg.decode.temperature == 0.0 and cfg.decode.stats_dtype == "float32" and cfg.decode.block_length is None
    assert cfg.domain.length == 8 and cfg.domain.model is None  # the domain's Options fields


def test_domain_defaults_override_package_defaults(toy_plugins):
    cfg = resolve_config("toy", "klass")
    assert cfg.n == 6 and cfg.decode.steps == 4  # package says 64 / null
    assert cfg.sampler.kl_threshold == 0.05  # domain's samplers.klass
    assert cfg.sampler.conf_threshold == 0.9  # the rule's Config default


def test_domain_sampler_defaults_only_for_the_chosen_rule(toy_plugins):
    cfg = resolve_config("toy", "med")
    assert set(cfg.sampler) == {"name", "entropy_threshold", "k_max"}
    assert cfg.sampler.entropy_threshold == 0.2


def test_merge_order_yaml_then_flags_then_dotlist(toy_plugins, tmp_path):
    yaml = write(tmp_path / "c.yaml", "n: 10\ndecode: {steps: 8, temperature: 0.5}\nsampler: {conf_threshold: 0.5}\n")
    cfg = resolve_config("toy", "klass", config_file=yaml)
    assert (cfg.n, cfg.decode.steps, cfg.decode.temperature, cfg.sampler.conf_threshold) == (10, 8, 0.5, 0.5)

    cfg = resolve_config("toy", "klass", config_file=yaml, flags={"n": 12, "decode.steps": 2})
    assert (cfg.n, cfg.decode.steps, cfg.decode.temperature) == (12, 2, 0.5)

    dotlist = ["n=14", "decode.steps=1", "sampler.kl_threshold=0.005"]
    cfg = resolve_config("toy", "klass", config_file=yaml, flags={"n": 12}, dotlist=dotlist)
    assert (cfg.n, cfg.decode.steps, cfg.sampler.kl_threshold, cfg.sampler.conf_threshold) == (14, 1, 0.005, 0.5)


def test_none_flags_mean_not_given(toy_plugins):
    cfg = resolve_config("toy", "klass", flags={"n": None, "decode.steps": None})
    assert cfg.n == 6 and cfg.decode.steps == 4


def test_names_can_come_from_yaml_and_dotlist(toy_plugins, tmp_path):
    yaml = write(tmp_path / "c.yaml", "domain: {name: toy}\nsampler: {name: med, k_max: 3}\n")
    cfg = resolve_config(config_file=yaml)
    assert cfg.sampler.name == "med" and cfg.sampler.k_max == 3
    cfg = resolve_config(dotlist=["domain.name=toy", "sampler.name=threshold", "sampler.threshold=0.5"])
    assert cfg.sampler.threshold == 0.5


def test_unknown_key_names_key_source_and_valid_keys(toy_plugins, tmp_path):
    with pytest.raises(ConfigError) as err:
        resolve_config("toy", "klass", dotlist=["sampler.kl_treshold=0.1"])
    msg = str(err.value)
    assert "sampler.kl_treshold" in msg and "overrides" in msg
    assert "conf_threshold, history, kl_threshold, name, unmask_strategy" in msg

    yaml = write(tmp_path / "c.yaml", "decode: {stepz: 3}\n")
    with pytest.raises(ConfigError, match=r"decode\.stepz.*c\.yaml.*valid keys of decode: answer_first, block_length"):
        resolve_config("toy", "klass", config_file=yaml)

    with pytest.raises(ConfigError, match=r"'bogus'.*valid keys of the top level: .*batch_size"):
        resolve_config("toy", "klass", dotlist=["bogus=1"])


def test_bad_value_names_key_and_valid_keys(toy_plugins):
    with pytest.raises(ConfigError, match=r"'decode\.steps'.*'abc'.*valid keys of decode: answer_first, block_length"):
        resolve_config("toy", "klass", dotlist=["decode.steps=abc"])
    with pytest.raises(ConfigError, match=r"'domain\.length'.*valid keys of domain: .*length"):
        resolve_config("toy", "klass", dotlist=["domain.length=long"])
    with pytest.raises(ConfigError, match="float32, float64"):
        resolve_config("toy", "klass", dotlist=["decode.stats_dtype=float16"])
    with pytest.raises(ConfigError, match="n must be >= 1"):
        resolve_config("toy", "klass", flags={"n": 0})


def test_unknown_domain_and_sampler_list_choices(toy_plugins):
    with pytest.raises(UnknownChoiceError, match=r"unknown domain 'nope'; choose one of: toy"):
        resolve_config("nope", "klass")
    with pytest.raises(UnknownChoiceError, match=r"unknown sampler 'nope'; choose one of: ar_med, confidence"):
        resolve_config("toy", "nope")


def test_dotlist_parsing():
    assert parse_dotlist(["a.b=1", "c=null", "d=[1, 2]", "e=x"]) == {"a": {"b": 1}, "c": None, "d": [1, 2], "e": "x"}
    for bad in ("steps", "=3", ".a=1"):
        with pytest.raises(ConfigError, match="key=value"):
            parse_dotlist([bad])


def test_nest_merges_dotted_and_nested_keys():
    assert nest({"decode": {"top_k": 2}, "decode.steps": 3, "n": None}) == {"decode": {"top_k": 2, "steps": 3}}


def test_yaml_errors(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        load_yaml(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(write(tmp_path / "list.yaml", "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="cannot parse"):
        load_yaml(write(tmp_path / "bad.yaml", "a: [1,\n"))


def test_saved_config_resolves_to_itself(toy_plugins, tmp_path):
    cfg = resolve_config("toy", "klass", dotlist=["sampler.history=3", "decode.top_p=0.9"])
    save_config(cfg, tmp_path / "config.yaml")
    again = resolve_config(config_file=tmp_path / "config.yaml")
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)
