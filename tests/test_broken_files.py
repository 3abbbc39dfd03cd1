"""A truncated or corrupted file anywhere gives exit 2 and one line naming the file, never a parser's traceback.

Covered: a model directory given with ``--model`` (weights cut short, emptied or with a changed byte, config and
vocabulary that are not JSON), the same for ``train --init``, the shipped weights, a ``--config`` file, and a
study's results file read by ``mdsample report``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mdsample import plugin_manager
from mdsample.cli import main
from mdsample.plugins.text import options as text_options

SHIPPED = Path(text_options.__file__).parent / "weights" / "arithmetic"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # inside the tensors: the header still parses, only the recorded sha256 can tell
    path.write_bytes(bytes(data))


def not_json(path: Path) -> None:
    path.write_bytes(b'{"symbols": ["a", \xff')


BREAKAGES = {  # name -> (file of the model directory, how it breaks)
    "truncated weights": ("model.safetensors", truncate),
    "empty weights": ("model.safetensors", empty),
    "changed weights": ("model.safetensors", flip_a_byte),
    "config": ("config.json", not_json),
    "vocabulary": ("vocab.json", not_json),
}


@pytest.fixture
def text_cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MDSAMPLE_PLUGINS", "samplers,text")
    monkeypatch.chdir(tmp_path)
    plugin_manager.reset()

    def invoke(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        return code, capsys.readouterr().err

    yield invoke
    plugin_manager.reset()


def broken_copy(tmp_path: Path, case: str) -> tuple[Path, Path]:
    """A copy of the shipped arithmetic model with one file broken; (directory, broken file)."""
    model = tmp_path / "model"
    shutil.copytree(SHIPPED, model)
    name, breakage = BREAKAGES[case]
    breakage(model / name)
    return model, model / name


def assert_names(code: int, err: str, broken: Path) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert str(broken) in err or broken.name in err, err


@pytest.mark.parametrize("case", BREAKAGES)
def test_model_given_with_model(text_cli, tmp_path, case):
    model, broken = broken_copy(tmp_path, case)
    code, err = text_cli("--domain", "text", "--task", "arithmetic", "--model", model, "-n", "2", "--device", "cpu",
                         "--no-progress", "--out", tmp_path / "run")
    assert_names(code, err, broken)
    assert not (tmp_path / "run").exists()  # nothing written for a model that does not load


@pytest.mark.parametrize("case", ["truncated weights", "changed weights", "config"])
def test_model_given_with_init(text_cli, tmp_path, case):
    model, broken = broken_copy(tmp_path, case)
    code, err = text_cli("train", "--domain", "text", "--task", "arithmetic", "--init", model, "--out",
                         tmp_path / "train", "train.size=tiny", "train.steps=1", "train.device=cpu",
                         "domain.train_rows=64")
    assert_names(code, err, broken)


@pytest.mark.parametrize("case", ["truncated weights", "vocabulary"])
def test_shipped_weights(text_cli, tmp_path, monkeypatch, case):
    model, broken = broken_copy(tmp_path, case)
    import mdsample.plugins.text.domain as text_domain

    weights = tmp_path / "weights"
    weights.mkdir()
    model.rename(weights / "arithmetic")
    monkeypatch.setattr(text_domain, "WEIGHTS_DIR", weights)
    code, err = text_cli("--domain", "text", "--task", "arithmetic", "-n", "2", "--device", "cpu", "--no-progress")
    assert_names(code, err, weights / "arithmetic" / broken.name)


@pytest.mark.parametrize("content", [b"domain: {name: text\n", b"n: \xff\xfe\n", b"- a\n- b\n"])
def test_config_file(text_cli, tmp_path, content):
    config = tmp_path / "broken.yaml"
    config.write_bytes(content)
    code, err = text_cli("--config", config)
    assert_names(code, err, config)


@pytest.mark.parametrize("line", [b'{"key": "a", "metrics": {', b"\xff\xfe{}"])
def test_study_results(text_cli, tmp_path, line):
    study = tmp_path / "study"
    study.mkdir()
    results = study / "results.jsonl"
    results.write_bytes(line + b"\n")
    code, err = text_cli("report", study)
    assert_names(code, err, results)
