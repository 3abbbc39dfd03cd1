"""The molecule domain end to end through a study and its report, on a tiny random model.

It lives with the molecule tests since it needs what they need (RDKit, the shipped MOSES reference); it used to sit
in tests/test_study_cli.py, which a host without them could not then run in full.
"""

from __future__ import annotations

import json

import yaml


def test_molecule_study_on_a_tiny_model(tiny_model_dir, monkeypatch, tmp_path, capsys):
    """MOSES metrics per cell, FCD as quality (NaN-safe), and the report naming it."""
    from mdsample import plugin_manager
    from mdsample.cli import main

    monkeypatch.setenv("MDSAMPLE_PLUGINS", "samplers,molecule")
    monkeypatch.chdir(tmp_path)
    plugin_manager.reset()
    study = {"n": 4, "overrides": {"domain.model": str(tiny_model_dir), "decode.steps": 8},
             "domains": {"molecule": {"quality": {"metric": "FCD/Test", "better": "lower"}}},
             "samplers": ["confidence"]}
    path = tmp_path / "mol.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"]) == 0
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(records) == 1 and {"valid", "FCD/Test", "Novelty"} <= set(records[0]["metrics"])
    assert records[0]["nfe"]["max"] == 8 + 50  # one token per step, then the domain's 50 corrector steps
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "FCD/Test (lower is better)" in (tmp_path / "out" / "report.md").read_text()
    assert "molecule / unconditional" in capsys.readouterr().out
