"""The example third-party plugin (examples/mdsample-dna), installed as CI installs it: found only by entry point.

The README's test command installs it (``pip install -e examples/mdsample-dna``); without that, the tests put its
package and an entry point on the path (mdsample.testing.entry_points), so they run the same either way. They check
what a user sees right after installing the plugin: ``mdsample list`` shows its domain and rule, and
``mdsample --domain dna`` runs on the model shipped inside the plugin's package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from mdsample import plugin_manager
from mdsample.cli import main
from mdsample.models.house import sha256_file
from mdsample.testing.entry_points import plugin_site

SOURCE = Path(__file__).resolve().parent.parent / "examples" / "mdsample-dna"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> list[str]:
    """The paths that make the example plugin found by entry point (none when pip installed it)."""
    return plugin_site(tmp_path_factory.mktemp("dna-site"), SOURCE, "mdsample-dna", {"dna": "mdsample_dna"})


@pytest.fixture
def weights(site, monkeypatch) -> Path:
    for path in site:
        monkeypatch.syspath_prepend(path)
    found = [ep for ep in entry_points(group="mdsample") if ep.name == "dna"]
    assert len(found) == 1 and found[0].value == "mdsample_dna" and found[0].dist.name == "mdsample-dna"
    import mdsample_dna.domain

    return mdsample_dna.domain.WEIGHTS_DIR


@pytest.fixture
def length(weights) -> int:
    from mdsample_dna.motifs import LENGTH

    return LENGTH


@pytest.fixture
def installed(weights, site, monkeypatch, tmp_path):
    """The entry points exactly as installed (no MDSAMPLE_PLUGINS pin); cwd is a fresh tmp dir."""
    monkeypatch.delenv("MDSAMPLE_PLUGINS", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([*site, os.environ.get("PYTHONPATH", "")]))
    plugin_manager.reset()
    yield tmp_path
    plugin_manager.reset()


def mdsample(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The console script's code in a fresh interpreter (plugins load from the installed entry points)."""
    cmd = [sys.executable, "-c", "import sys; from mdsample.cli import main; sys.exit(main())", *args]
    env = {k: v for k, v in os.environ.items() if k != "MDSAMPLE_PLUGINS"} | {"COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_list_shows_the_plugin_its_domain_and_its_rule(installed):
    done = mdsample("list", cwd=installed)
    assert done.returncode == 0, done.stderr
    rows = [" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()]
    assert any(r.startswith("dna promoter-like DNA") and r.endswith(" dna") for r in rows)
    assert any(r.startswith("spaced Top-k by confidence") and r.endswith(" dna") for r in rows)
    assert "dna loaded" in rows


def test_readme_style_run_with_the_extra_rule(installed, length):
    done = mdsample("--domain", "dna", "--sampler", "spaced", "-n", "16", "--steps", "16", "--out", "run",
                    "--no-progress", "--device", "cpu", cwd=installed)
    assert done.returncode == 0, done.stderr
    run = installed / "run"
    assert {"samples.fasta", "metrics.json", "config.yaml"} <= {p.name for p in run.iterdir()}
    fasta = (run / "samples.fasta").read_text().splitlines()
    assert len(fasta) == 32 and all(line.startswith(">sample_") for line in fasta[::2])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["domain"] == "dna" and metrics["sampler"] == "spaced" and metrics["n"] == 16
    # Two positions per step by the schedule; the spacing may leave a step with fewer, costing an extra step.
    assert 16 <= metrics["nfe_mean"] < length


def test_klass_on_the_shipped_model_learned_the_motifs(installed, length, capsys):
    assert main(["--domain", "dna", "--sampler", "klass", "-n", "32", "--out", "run", "--no-progress",
                 "--device", "cpu", "--seed", "3"]) == 0
    metrics = json.loads((installed / "run" / "metrics.json").read_text())
    # Uniform random DNA has a TATA box in ~0.7% of 32-mers and satisfies every constraint in < 1% (examples'
    # test_dna_data.py); the shipped model reaches ~0.8 and ~0.6 (MODEL_CARD.md), and must not copy its training rows.
    assert metrics["tata_rate"] >= 0.6 and metrics["valid"] >= 0.3
    assert metrics["unique"] == 1.0 and metrics["novel"] == 1.0
    assert 0.4 <= metrics["gc_mean"] <= 0.6 and metrics["kmer4_js"] < 0.1
    assert metrics["nfe_mean"] <= length
    assert "tata_rate" in capsys.readouterr().out


def test_prompt_positions_are_kept(installed, length):
    assert main(["--domain", "dna", "--sampler", "klass", "-n", "4", "--out", "run", "--no-progress", "--device",
                 "cpu", "--prompt", "nnnnnnnnTATAAAnn"]) == 0
    fasta = (installed / "run" / "samples.fasta").read_text().splitlines()
    assert all(seq[8:14] == "TATAAA" and len(seq) == length for seq in fasta[1::2])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "ACGU"], "has characters 'U'; use only A, C, G, T, N"),
        (["--prompt", "ACGT" * 8], "leaves nothing to generate"),
        (["--prompt", "N" * 33], "DNA prompt has 33 characters but the canvas has 32"),
        (["--class", "x"], "the dna domain has no classes"),
        (["sampler.radius=-1"], "sampler.radius must be >= 0"),
    ],
)
def test_bad_requests_are_one_line_errors(installed, capsys, args, message):
    assert main(["--domain", "dna", "--sampler", "spaced", "-n", "2", "--no-progress", "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_shipped_model_is_small_and_matches_its_card(weights):
    files = {p.name: p for p in weights.iterdir()}
    assert {"config.json", "model.safetensors", "alphabet.json", "MODEL_CARD.md", "train_log.jsonl"} <= set(files)
    assert sum(p.stat().st_size for p in files.values()) < 1_000_000
    card = files["MODEL_CARD.md"].read_text()
    assert f"- sha256: `{sha256_file(files['model.safetensors'])}`" in card
    assert "- command: `mdsample train --domain dna " in card and "train.device=cpu" in card
