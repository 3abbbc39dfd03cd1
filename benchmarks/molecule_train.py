"""Train the molecule house models on one or more GPUs within a wall-clock budget (how the shipped models are made).

Why a driver: the device machine gives one command at most ten minutes, and a cosine schedule cut short by a time
limit never decays. So the driver first runs every training concurrently for a few seconds (the same processes on
the same GPUs as the real runs, so the measured rate includes their sharing), then lays each schedule over exactly
as many steps as its measured rate fits into the budget, and starts the real runs together. Each run directory is
packed into one ``.tar`` under ``--out`` (the device returns few files), with ``summary.json`` beside them.

    python benchmarks/molecule_train.py --csv-dir DIR --minutes 6 \\
        --run smiles:base --run smiles:base_deep --run selfies:base --run selfies:base_deep

A run is ``REPRESENTATION:SIZE[:INIT_DIR][@KEY=VALUE,...]``; with an INIT_DIR the run continues from that checkpoint
(``--init``); overrides after ``@`` apply to that run only and name it, so that variants of one model (e.g.
``@train.noise_schedule=cosine`` beside the linear run) train side by side under the same probe. Runs are spread
round-robin over the visible GPUs. Extra ``train.*`` overrides for every run follow ``--``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path


def mdsample(*args: str) -> list[str]:
    return [sys.executable, "-m", "mdsample.cli", *args]


def prepare(csv_dir: Path, data_dir: Path, processes: int) -> None:
    """Copy the MOSES splits and encode train/test for both representations (cached .npy rows)."""
    cmd = mdsample("data", "--domain", "molecule", "--csv-dir", str(csv_dir), "--dest", str(data_dir),
                   "--encode", "smiles", "selfies", "--processes", str(processes))
    subprocess.run(cmd, check=True)


def launch(runs: list[str], out: Path, data_dir: Path, gpus: int, steps: dict[str, int] | None, minutes: float,
           extra: list[str]) -> dict[str, subprocess.Popen]:
    procs = {}
    for i, run in enumerate(runs):
        representation, size, *init = split_run(run)[0].split(":")
        name = run_name(run)
        run_dir = out / name
        overrides = [f"domain.representation={representation}", f"domain.data_dir={data_dir}", f"train.size={size}",
                     f"train.max_minutes={minutes}", f"train.steps={steps[name] if steps else 10**7}", *extra,
                     *split_run(run)[1]]
        if steps is None:
            overrides += ["train.log_every=20", "train.eval_every=100000"]
        cmd = mdsample("train", "--domain", "molecule", "--out", str(run_dir), *(["--init", init[0]] if init else []),
                       *overrides)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(i % max(1, gpus)))
        log = open(out / f"{name}.log", "w")
        procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return procs


def split_run(run: str) -> tuple[str, list[str]]:
    """``REPRESENTATION:SIZE[:INIT_DIR]`` and the run's own overrides (after ``@``, comma-separated)."""
    spec, _, overrides = run.partition("@")
    return spec, [o for o in overrides.split(",") if o]


def run_name(run: str) -> str:
    spec, overrides = split_run(run)
    representation, size, *init = spec.split(":")
    suffix = "".join("_" + o.rsplit(".", 1)[-1].replace("=", "-") for o in overrides)
    return f"{representation}_{size}" + ("_cont" if init else "") + suffix


def wait(procs: dict[str, subprocess.Popen]) -> None:
    for name, proc in procs.items():
        if proc.wait() != 0:
            raise SystemExit(f"training {name} failed (exit {proc.returncode})")


def probe_rate(log: Path) -> tuple[float, float]:
    """(steady steps/s, warm-up seconds) from the probe's log, skipping the first two records (allocator, kernel and
    torch.compile warm-up); the warm-up is the time the first records took beyond what the steady rate explains."""
    records = [json.loads(line) for line in log.read_text().splitlines() if '"tokens_per_s"' in line]
    if len(records) < 3:
        raise SystemExit(f"the probe wrote too few throughput records to {log}; give it more --probe-seconds")
    first, last = records[1], records[-1]
    rate = (last["step"] - first["step"]) / (last["elapsed_s"] - first["elapsed_s"])
    return rate, max(0.0, first["elapsed_s"] - first["step"] / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv-dir", type=Path, required=True, help="folder with the MOSES train/test csv.gz")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/moses"))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/molecule-train")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/molecule-train"))
    parser.add_argument("--run", action="append", required=True, help="REPRESENTATION:SIZE[:INIT_DIR][@KEY=VALUE,...]")
    parser.add_argument("--minutes", type=float, required=True, help="training minutes per run (after the probe)")
    parser.add_argument("--probe-seconds", type=float, default=25.0)
    parser.add_argument("--rate", type=float, nargs=2, metavar=("STEPS_PER_S", "WARMUP_S"),
                        help="skip the probe: a rate and warm-up measured by an earlier probe on the same setup")
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to spread runs over (default: all visible)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("extra", nargs="*", help="train.KEY=VALUE overrides for every run")
    args = parser.parse_args()
    import torch

    gpus = args.gpus or max(1, torch.cuda.device_count())
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prepare(args.csv_dir, args.data_dir, args.processes)
    prepared_s = time.perf_counter() - start

    if args.rate:
        rates = {run_name(r): tuple(args.rate) for r in args.run}
    else:
        probe_dir = args.work / "probe"
        probe_dir.mkdir(parents=True, exist_ok=True)
        wait(launch(args.run, probe_dir, args.data_dir, gpus, None, args.probe_seconds / 60, args.extra))
        rates = {run_name(r): probe_rate(probe_dir / run_name(r) / "train_log.jsonl") for r in args.run}
    steps = {name: int(rate * (args.minutes * 60 - warm) * 0.95) for name, (rate, warm) in rates.items()}
    print(f"probe (steps/s, warm-up s): {rates}; steps: {steps}", flush=True)

    final_dir = args.work / "final"
    final_dir.mkdir(parents=True, exist_ok=True)
    wait(launch(args.run, final_dir, args.data_dir, gpus, steps, args.minutes + 0.5, args.extra))
    summary = {"runs": args.run, "extra": args.extra, "gpus": gpus, "prepare_s": prepared_s,
               "probe_steps_per_s_and_warmup_s": rates,
               "steps": steps, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "total_s": time.perf_counter() - start}
    for name in steps:
        with tarfile.open(args.out / f"{name}.tar", "w") as tar:
            tar.add(final_dir / name, arcname=name)
        log = [json.loads(line) for line in (final_dir / name / "train_log.jsonl").read_text().splitlines()]
        summary[name] = {"last": log[-1], "best_val": min(r["val_loss"] for r in log if "val_loss" in r)}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)


if __name__ == "__main__":
    main()
