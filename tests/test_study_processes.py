"""Studies across processes: SIGKILL mid-study then resume, and 2 gloo processes (torchrun) against 1 process.

Both compare what matters in a results line (cell, key, metrics but timings, NFE) and the samples each cell
wrote, against an uninterrupted one-process run of the same study.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mdsample.cli import main

TESTS = Path(__file__).resolve().parent
# The toy domain registered as a plugin, optionally with a slow denoiser so that a study can be killed mid-way.
LAUNCHER = f"""
import os, sys, time
sys.path.insert(0, {str(TESTS)!r})
import toy_domain
from mdsample import plugin_manager
from mdsample.cli import main

delay = float(os.environ.get("TOY_DELAY", "0"))
real = toy_domain.SuccessorDenoiser.__call__

def slow(self, tokens, **kw):
    time.sleep(delay)
    return real(self, tokens, **kw)

if delay:
    toy_domain.SuccessorDenoiser.__call__ = slow
plugin_manager.register_plugin(toy_domain, "toy")
sys.exit(main(sys.argv[1:]))
"""


def study(tmp_path: Path, **change) -> Path:
    spec = {
        "name": "toy",
        "n": 3,
        "seeds": [0, 1],
        "overrides": {"decode.temperature": 1.0},
        "grid": {"decode.steps": [2, 4]},
        "domains": {"toy": {"quality": {"metric": "valid"}}},
        "samplers": ["confidence", "random", "klass"],
        **change,
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def launcher(tmp_path: Path) -> Path:
    path = tmp_path / "launch.py"
    path.write_text(LAUNCHER)
    return path


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "MDSAMPLE_PLUGINS": "samplers", "OMP_NUM_THREADS": "1", **extra}


def essentials(out: Path) -> dict[str, tuple]:
    """key -> (cell, metrics without timings, NFE statistics, samples written) of every line."""
    found = {}
    for line in (out / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        metrics = {k: v for k, v in r["metrics"].items() if not k.startswith("wall_s")}
        samples = (out / "cells" / r["key"] / "samples.txt").read_text()
        found[r["key"]] = (r["cell"], metrics, r["nfe"], samples)
    return found


def one_process(toy_plugins, spec: Path, out: Path) -> dict[str, tuple]:
    assert main(["study", str(spec), "--out", str(out), "--no-progress"]) == 0
    return essentials(out)


def test_sigkill_mid_study_loses_nothing_finished(toy_plugins, tmp_path):
    spec, out = study(tmp_path), tmp_path / "killed"
    command = [sys.executable, str(launcher(tmp_path)), "study", str(spec), "--out", str(out), "--no-progress"]
    results = out / "results.jsonl"
    proc = subprocess.Popen(command, env=environment(TOY_DELAY="0.05"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if results.is_file() and results.read_text().count("\n") >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the study ended before it could be killed: {proc.stderr.read().decode()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = results.read_text().count("\n")
    assert 3 <= recorded < 12
    with results.open("ab") as f:  # as if the kill had struck in the middle of writing a line
        f.write(b'{"key": "0123456789abcdef0123", "cell": {"dom')

    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{recorded} already recorded, {12 - recorded} to run" in " ".join(done.stdout.split())
    resumed = essentials(out)
    assert len(resumed) == 12 and results.read_text().count("\n") == 12
    assert resumed == one_process(toy_plugins, spec, tmp_path / "straight")


def test_two_gloo_processes_give_the_one_process_results(toy_plugins, tmp_path):
    # 7 samples in batches of 2: rank 0 decodes batches 0 and 2, rank 1 batches 1 and 3 (of 1 sample)
    spec = study(tmp_path, n=7, overrides={"decode.temperature": 1.0, "batch_size": 2}, samplers=["random", "klass"])
    out = tmp_path / "sharded"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(launcher(tmp_path)), "study", str(spec), "--out", str(out), "--no-progress"]
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = essentials(out)
    assert {json.loads(line)["world_size"] for line in (out / "results.jsonl").read_text().splitlines()} == {2}
    single = one_process(toy_plugins, spec, tmp_path / "single")
    assert len(single) == 8 and sharded == single
    assert len({s[3] for s in single.values()}) > 1  # the samples really depend on seed and setting
