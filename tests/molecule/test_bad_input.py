"""Bad input to the molecule domain: one line naming the problem, exit 2, and finished samples kept."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from mdsample.errors import ConfigError
from mdsample.plugins.molecule import reference
from mdsample.plugins.molecule.domain import WEIGHTS_DIR


def mdsample(*args: str, cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", "import sys; from mdsample.cli import main; sys.exit(main())", "--domain", "molecule",
           "-n", "2", "--no-progress", "--device", "cpu", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


def _broken_model(tmp_path, file: str, content: bytes | None = None):
    model = tmp_path / "model"
    shutil.copytree(WEIGHTS_DIR / "smiles", model)
    path = model / file
    path.write_bytes(path.read_bytes()[:1000] if content is None else content)
    return model


@pytest.mark.parametrize("case", ["representation", "template", "weights", "config", "vocab"])
def test_one_line_exit_2(tmp_path, case):
    args, needle = {
        "representation": lambda: (["domain.representation=smiless"], "unknown representation 'smiless'"),
        "template": lambda: (["--prompt", "CC(=O)N{8"], "prompt piece"),
        "weights": lambda: (["--model", str(_broken_model(tmp_path, "model.safetensors"))],
                            "model.safetensors' is broken"),
        "config": lambda: (["--model", str(_broken_model(tmp_path, "config.json", b'{"broken'))], "config.json"),
        "vocab": lambda: (["--model", str(_broken_model(tmp_path, "vocab.json", b'{"repr'))], "vocab.json"),
    }[case]()
    done = mdsample(*args, "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and needle in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # nothing half-written for a run that never started


@pytest.fixture
def broken_reference(tmp_path, monkeypatch):
    copy = tmp_path / "reference"
    shutil.copytree(reference.REFERENCE_DIR, copy)
    raw = (copy / "fps_test.bin").read_bytes()
    (copy / "fps_test.bin").write_bytes(raw[: len(raw) // 3])
    monkeypatch.setattr(reference, "REFERENCE_DIR", copy)
    reference.fingerprints.cache_clear()
    yield copy
    reference.fingerprints.cache_clear()


def test_a_truncated_reference_names_the_file_and_keeps_the_samples(tmp_path, broken_reference):
    import mdsample

    with pytest.raises(ConfigError, match="fps_test.bin is corrupted"):
        mdsample.sample("molecule", "confidence", 3, out=str(tmp_path / "run"), device="cpu", progress=False,
                        decode={"steps": 8})
    assert len((tmp_path / "run" / "samples.smi").read_text().splitlines()) == 3


def test_without_rdkit_a_run_names_the_extra_in_one_line(tmp_path, monkeypatch, capsys):
    from mdsample.cli import main

    monkeypatch.setitem(sys.modules, "rdkit", None)  # `import rdkit` fails, as without mdsample[molecule]
    assert main(["--domain", "molecule", "--sampler", "confidence", "-n", "2", "--steps", "8", "--no-progress",
                 "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "needs RDKit: pip install 'mdsample[molecule]'" in err and err.count("\n") == 1, err
