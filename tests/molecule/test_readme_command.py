"""The README's main command, end to end through the console script, on the shipped house models."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest


def mdsample(*args: str, cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from mdsample.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("representation", ["smiles", "selfies"])
def test_readme_command_on_the_shipped_model(tmp_path, representation):
    out = tmp_path / "run"
    done = mdsample("--domain", "molecule", "--sampler", "klass", "-n", "12", "--out", str(out), "--no-progress",
                    f"domain.representation={representation}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert {"samples.smi", "metrics.json", "config.yaml"} <= {p.name for p in out.iterdir()}
    lines = (out / "samples.smi").read_text().splitlines()
    assert len(lines) == 12
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sampler"] == "klass" and metrics["n"] == 12
    # the shipped models are real: KLASS on them gives mostly valid molecules in fewer steps than slots, then the
    # domain's 50 corrector steps
    assert metrics["valid"] >= 0.75
    assert 50 < metrics["nfe_mean"] < 55 + 50
    assert not math.isnan(metrics["FCD/Test"])
    assert "FCD/Test" in done.stdout


def test_bad_sampler_on_the_molecule_domain_is_one_line_exit_2(tmp_path):
    done = mdsample("--domain", "molecule", "--sampler", "klas", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "klass" in done.stderr and "Traceback" not in done.stderr
