import json

from mdsample.cli import main


def test_cli_samples_a_class_with_klass(tiny_glyph_model, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--domain", "image", "--sampler", "klass", "--class", "A", "-n", "6", "--model",
                 str(tiny_glyph_model), "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6 and metrics["domain"] == "image"
    assert {"fd_glyph", "accuracy", "is_glyph"} <= set(metrics)
    assert (out / "grid.png").is_file() and len(list((out / "images").glob("*.png"))) == 6
    labels = [json.loads(line)["label"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert labels == ["A"] * 6


def test_cli_defaults_use_maskgit_settings(tiny_glyph_model, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--domain", "image", "--sampler", "maskgit", "-n", "5", "--model", str(tiny_glyph_model),
                 "--out", str(out), "--no-progress", "--device", "cpu", "batch_size=2"])
    assert code == 0, capsys.readouterr().err
    config = (out / "config.yaml").read_text()
    assert "choice_temperature: 4.5" in config and "steps: 12" in config
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["nfe_mean"] == 12
    labels = [json.loads(line)["label"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert labels == list("ABCAB")


def test_cli_bad_class_exits_2(tiny_glyph_model, capsys):
    code = main(["--domain", "image", "--class", "Q", "-n", "2", "--model", str(tiny_glyph_model),
                 "--no-progress", "--device", "cpu"])
    assert code == 2
    assert "unknown class 'Q'" in capsys.readouterr().err


def test_cli_without_shipped_weights_exits_2(monkeypatch, capsys):
    import mdsample.plugins.image.domain as mod

    monkeypatch.setattr(mod, "WEIGHTS_DIR", mod.WEIGHTS_DIR / "absent")
    code = main(["--domain", "image", "-n", "2", "--no-progress", "--device", "cpu"])
    assert code == 2
    assert "mdsample train --domain image" in capsys.readouterr().err
