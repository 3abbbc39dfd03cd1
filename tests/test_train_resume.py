"""``mdsample train`` killed with SIGKILL mid-run and resumed ends with bit-identical weights (CPU, fixed seed).

The reference run goes through uninterrupted in this process. The second run is a subprocess killed as soon as its
first checkpoint is on disk, then resumed here with ``mdsample train --resume RUN_DIR``: its final weights and the
losses in its log must equal the reference's exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import repeat_domain
import torch
from safetensors.torch import load_file

from mdsample import plugin_manager
from mdsample.cli import main
from mdsample.errors import BrokenFileError
from mdsample.train_checkpoint import CHECKPOINT

TESTS = Path(__file__).resolve().parent
SETTINGS = ["train.size=tiny", "train.steps=120", "train.batch_size=8", "train.lr=1e-2", "train.warmup=10",
            "train.eval_every=30", "train.eval_batches=2", "train.log_every=10", "train.device=cpu",
            "train.checkpoint_steps=30", "train.checkpoint_minutes=null", "train.seed=3"]
SCRIPT = ("import sys, repeat_domain; from mdsample import plugin_manager; "
          "plugin_manager.register_plugin(repeat_domain, 'repeat'); from mdsample.cli import main; sys.exit(main())")


@pytest.fixture
def repeat(monkeypatch):
    """The repeat domain alone, on one CPU thread here and in the subprocess (the same kernels for both, and no
    thread oversubscription on a busy machine)."""
    monkeypatch.setenv("MDSAMPLE_PLUGINS", "")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    plugin_manager.reset()
    plugin_manager.register_plugin(repeat_domain, "repeat")
    yield
    plugin_manager.reset()
    torch.set_num_threads(threads)


def losses(run: Path) -> list[tuple]:
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r.get("loss"), r.get("masked_ce"), r.get("val_loss")) for r in records]


def killed_run(out: Path) -> None:
    """``mdsample train`` in a subprocess, SIGKILLed once its first checkpoint exists."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "MDSAMPLE_PLUGINS": "", "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "train", "--domain", "repeat", "--out", str(out),
                             *SETTINGS], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / CHECKPOINT).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()


def test_resume_after_kill_gives_bit_identical_weights(repeat, tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert main(["train", "--domain", "repeat", "--out", str(reference), *SETTINGS]) == 0
    assert not (reference / CHECKPOINT).exists()  # removed once the model is saved

    killed_run(resumed)
    assert (resumed / CHECKPOINT).is_file() and not (resumed / "model.safetensors").exists()  # killed mid-run
    assert main(["train", "--resume", str(resumed)]) == 0

    want, got = load_file(reference / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert want.keys() == got.keys()
    assert all(want[k].equal(got[k]) for k in want)
    assert losses(resumed) == losses(reference)


def test_resume_takes_no_other_options_and_names_a_broken_checkpoint(repeat, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--domain", "repeat", "--out", str(run), *SETTINGS[:-3], "train.steps=20",
                 "train.checkpoint_steps=5"]) == 0
    assert main(["train", "--resume", str(run), "train.steps=30"]) == 2
    assert "drop train.steps=30" in capsys.readouterr().err
    (run / CHECKPOINT).write_bytes(b"\x00" * 40)  # a checkpoint cut short
    with pytest.raises(BrokenFileError, match=CHECKPOINT):
        from mdsample.train import TrainConfig, train

        train(repeat_domain.RepeatDomain(), repeat_domain.DomainOptions(),
              TrainConfig(size="tiny", steps=10, batch_size=8, device="cpu", resume=True), run)
