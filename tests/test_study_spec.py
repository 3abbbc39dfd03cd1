"""Study files: parsing, checks with actionable errors, grid expansion with its layering, and cell keys."""

from __future__ import annotations

import pytest
import torch
import yaml

from mdsample.errors import ConfigError, MdsampleError, MissingFileError, UnknownChoiceError
from mdsample.study.cells import cell_key, expand
from mdsample.study.spec import load_study, parse_study

STUDY = {
    "name": "toy",
    "n": 3,
    "seeds": [0, 1],
    "overrides": {"batch_size": 2, "decode": {"temperature": 1.0}},
    "grid": {"decode.steps": [2, 4]},
    "domains": {"toy": {"quality": {"metric": "valid"}, "tasks": {"unconditional": {}, "prompted": {
        "overrides": {"domain.prompt": "cd"}}}}},
    "samplers": {"confidence": None, "klass": {"overrides": {"decode.temperature": 0.5},
                                               "grid": {"sampler.kl_threshold": [0.01, 0.1]}}},
}


SMALL = {"seeds": [0], "domains": {"toy": {"quality": {"metric": "valid"}}}, "samplers": ["random"]}


def parse(study: dict):
    return parse_study(study, "test.yaml", "fallback")


def test_expansion_crosses_every_axis_in_run_order(toy_plugins):
    cells = expand(parse(STUDY))
    # tasks x (confidence: 2 steps + klass: 2 steps x 2 thresholds) x 2 seeds
    assert len(cells) == 2 * (2 + 4) * 2
    first = cells[0]
    assert (first.domain, first.task, first.sampler, first.seed) == ("toy", "unconditional", "confidence", 0)
    assert first.label == "toy/unconditional/confidence decode.steps=2 seed=0"
    assert [c.seed for c in cells[:4]] == [0, 1, 0, 1]
    assert len({c.key for c in cells}) == len(cells)


def test_layers_specific_beats_general_and_grid_beats_overrides(toy_plugins):
    cells = expand(parse(STUDY), extra={"n": 5})
    klass = next(c for c in cells if c.sampler == "klass" and c.task == "prompted")
    cfg = klass.config
    assert cfg.decode.temperature == 0.5  # sampler overrides beat the study's
    assert cfg.batch_size == 2 and cfg.n == 5  # the command's key=value beats the study's n
    assert cfg.domain.prompt == "cd" and cfg.domain.task == "prompted"
    assert cfg.sampler.kl_threshold == klass.params["sampler.kl_threshold"]
    assert cfg.decode.steps == klass.params["decode.steps"] and cfg.seed == klass.seed
    confidence = next(c for c in cells if c.sampler == "confidence")
    assert confidence.config.decode.temperature == 1.0 and confidence.config.domain.prompt is None

    narrowed = {**STUDY, "samplers": {"confidence": {"grid": {"decode.steps": [8]}}}}
    assert {c.config.decode.steps for c in expand(parse(narrowed))} == {8}  # a specific grid replaces the list


def test_keys_follow_the_resolved_config_not_the_wording(toy_plugins):
    study = {**STUDY, "seeds": [0], "domains": {"toy": {"quality": {"metric": "valid"}}}}
    cells = expand(parse(study))
    reworded = {**study, "overrides": {"batch_size": 2, "decode.temperature": 1.0},
                "samplers": dict(reversed(list(STUDY["samplers"].items())))}
    assert {c.key for c in expand(parse(reworded))} == {c.key for c in cells}

    cell = cells[0]
    cfg = cell.config.copy()
    cfg.out, cfg.progress = "elsewhere", True  # reporting keys
    assert cell_key(cfg) == cell.key
    cfg.decode.steps = 3
    assert cell_key(cfg) != cell.key


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu-host", "gpu-host"])
def test_keys_hold_the_type_of_device_a_cell_runs_on(toy_plugins, monkeypatch, gpu):
    """``auto`` keys as what it resolves to on this host, so CPU results never stand in for a GPU host's (nor the
    reverse); the GPU's index is left out, since cuda:1 computes what cuda:0 does (a study under torchrun)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    cfg = expand(parse(SMALL))[0].config.copy()

    def key(device: str) -> str:
        cfg.device = device
        return cell_key(cfg)

    if gpu:
        assert key("auto") == key("cuda") == key("cuda:1") != key("cpu")
    else:
        assert key("auto") == key("cpu")


def test_default_task_and_sampler_list(toy_plugins):
    study = {"domains": {"toy": {"quality": {"metric": "valid", "better": "lower"}}}, "samplers": ["random"]}
    cells = expand(parse(study))  # no seeds: [0]; no tasks: the domain's first
    assert [(c.task, c.sampler, c.seed) for c in cells] == [("unconditional", "random", 0)]
    assert cells[0].study == "fallback" and cells[0].quality.better == "lower"


def test_load_study_file(toy_plugins, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in STUDY.items() if k != "name"}))
    study = load_study(path)
    assert study.name == "mine" and study.seeds == [0, 1]
    assert str(study.out_dir()) == "runs/studies/mine"
    with pytest.raises(MissingFileError):
        load_study(tmp_path / "absent.yaml")


ERRORS = {
    "unknown top key": ({"sampler": {}}, ConfigError, ["'sampler'", "samplers"]),
    "seeds": ({"seeds": 3}, ConfigError, ["seeds", "list of integers"]),
    "repeated seed": ({"seeds": [1, 1]}, ConfigError, ["twice"]),
    "owned key": ({"overrides": {"seed": 3}}, ConfigError, ["'seed'", "seeds"]),
    "owned nested key": ({"overrides": {"sampler": {"name": "random"}}}, ConfigError, ["'sampler.name'"]),
    "grid scalar": ({"grid": {"decode.steps": 4}}, ConfigError, ["decode.steps", "list"]),
    "no quality": ({"domains": {"toy": {}}}, ConfigError, ["quality", "metric"]),
    "bad better": ({"domains": {"toy": {"quality": {"metric": "valid", "better": "up"}}}}, UnknownChoiceError,
                   ["'up'", "lower"]),
    "bad n": ({"n": 0}, ConfigError, ["n must be a positive integer"]),
    "no samplers": ({"samplers": []}, ConfigError, ["samplers"]),
}


@pytest.mark.parametrize("case", ERRORS)
def test_bad_study_files_name_the_problem(toy_plugins, case):
    change, error, words = ERRORS[case]
    with pytest.raises(error) as info:
        parse({**STUDY, **change})
    for word in words:
        assert word in str(info.value)


EXPANSION_ERRORS = {
    "unknown sampler": ({"samplers": ["klas"]}, UnknownChoiceError, ["'klas'", "klass"]),
    "unknown domain": ({"domains": {"tyo": {"quality": {"metric": "valid"}}}}, UnknownChoiceError, ["'tyo'", "toy"]),
    "unknown task": ({"domains": {"toy": {"quality": {"metric": "valid"}, "tasks": ["sudoku"]}}}, UnknownChoiceError,
                     ["'sudoku'", "prompted"]),
    "bad run key": ({"overrides": {"decode.stepz": 3}}, ConfigError, ["cell toy/unconditional/random", "decode.stepz"]),
    "same config twice": ({"grid": {"decode.steps": [2, 2]}}, ConfigError, ["same config"]),
}


@pytest.mark.parametrize("case", EXPANSION_ERRORS)
def test_cells_that_cannot_run_fail_before_anything_runs(toy_plugins, case):
    change, error, words = EXPANSION_ERRORS[case]
    with pytest.raises(error) as info:
        expand(parse({**SMALL, **change}))
    assert isinstance(info.value, MdsampleError)
    for word in words:
        assert word in str(info.value)
