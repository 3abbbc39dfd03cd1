"""Reasoning-as-infilling on the chain task (issue 19): the findings of "No Compute Left Behind", one command.

Phases (``--phases``, default all, in this order):

* ``train``: the shipped model (every problem with its gold trace) and the base (traces for ``--trace-fraction`` of
  the problems, the others answers alone with the reasoning unobserved), side by side (on two GPUs when visible);
* ``posterior``: the base in-fills traces given the answers of ``--traces`` train problems it saw without reasoning
  (``mdsample posterior``), each scored by the answer's log-likelihood (``score``) and by the trace's own
  step-checking pseudo-likelihood (``trace_score``); ``--keep`` keeps that top fraction by ``--keep-by``; the gold
  traces of the same problems are written beside them;
* ``finetune``: the base fine-tuned on each trace set (posterior, gold) with the same steps, for each of ``--seeds``,
  all jobs at once, spread over the GPUs (a house model leaves an H200 mostly idle);
* ``eval``: the shipped model with full reasoning, answer first (``decode.answer_first``), k = 1, 2, 4 positions per
  step, MED, early exit, MED + early exit, and the partial-trace correlation (partial_trace_rewards.py); the base
  (full reasoning, answer first, its partial-trace correlation) and every fine-tuned model (full reasoning), all on
  the same held-out problems;
* ``table``: the markdown tables for BENCHMARKS.md (reasoning_tables.py).

The shipped model is evaluated while the fine-tuning jobs run. ``--minutes`` is the budget of the whole command:
training gets ``--train-share`` of it, fine-tuning what is left after a reserve for the evaluations, each as
``train.max_minutes``; fine-tunes run eagerly (six compilations would eat their budget), the trainings compile on
a GPU. Results go to ``--out`` as they come: ``reasoning_suite.json`` (rewritten after every phase, with each
phase's seconds), ``reasoning_suite.log``, ``reasoning_suite.md``, ``chain_model.tar.gz`` (the shipped model
directory, for ``mdsample/plugins/text/weights/chain``) and ``base_model.tar.gz``. Phases can run in separate calls:
the later ones read the models from ``--work`` (``models/shipped``, ``models/base``: the archives unpacked) and
continue the JSON given by ``--results-from``. ``--smoke`` runs the same code on a CPU in a minute: a few
training steps of the tiny model on a few problems (the numbers mean nothing; the plumbing is what it checks).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import mdsample
from mdsample.plugins.text.tasks.chain import ChainTask

sys.path.insert(0, str(Path(__file__).parent))
from partial_trace_rewards import measure  # noqa: E402 (a sibling script, importable once its folder is on the path)
from reasoning_tables import render  # noqa: E402

PHASES = ("train", "posterior", "finetune", "eval", "table")
ARMS = ("posterior", "gold")


@dataclass
class Scale:
    """The sizes of one run; ``FULL`` is the GPU run, ``SMOKE`` the CPU check."""

    size: str
    train_steps: int
    train_rows: int
    batch_size: int
    traces: int
    finetune_steps: int
    n_eval: int
    n_corr: int
    eval_batch: int
    compile: bool


FULL = Scale("deep", 9000, 1_000_000, 512, 40000, 1500, 2000, 1000, 2000, True)
SMOKE = Scale("tiny", 30, 2000, 32, 48, 10, 24, 16, 24, False)


class Suite:
    """The run's state: where things go, the devices, the log, and the results written after every phase."""

    def __init__(self, args: argparse.Namespace):
        self.args, self.scale = args, SMOKE if args.smoke else FULL
        self.start = time.time()
        self.deadline = self.start + 60 * args.minutes
        self.work, self.out = Path(args.work), Path(args.out)
        self.work.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log_path = self.out / "reasoning_suite.log"
        self.results_path = self.out / "reasoning_suite.json"
        self.slots = gpus(args.device)
        self.task = ChainTask(args.ops)
        earlier = Path(args.results_from) if args.results_from else self.results_path
        self.results = json.loads(earlier.read_text()) if earlier.is_file() else {}
        self.results.update(benchmark="reasoning_suite", version=mdsample.__version__, task="chain", ops=args.ops,
                            scale=asdict(self.scale), trace_fraction=args.trace_fraction, keep=args.keep,
                            seeds=args.seeds, minutes=args.minutes, gpus=len([s for s in self.slots if s is not None]))
        self.results.setdefault("commands", [])
        if self.slots[0] is not None:
            import torch

            self.results["device"] = torch.cuda.get_device_name(0)

    def model(self, name: str) -> Path:
        return self.work / "models" / name

    def log(self, text: str) -> None:
        line = f"[{time.time() - self.start:7.1f}s] {text}"
        print(line, flush=True)
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def save(self) -> None:
        self.results["elapsed_s"] = time.time() - self.start
        self.results_path.write_text(json.dumps(self.results, indent=2, default=_plain) + "\n")

    def timed(self, name: str, phase) -> None:
        """Run ``phase(self)`` and record its wall-clock seconds in results["phase_s"]."""
        start = time.time()
        phase(self)
        self.results.setdefault("phase_s", {})[name] = time.time() - start
        self.save()

    def minutes_left(self) -> float:
        return (self.deadline - time.time()) / 60

    def device(self, slot: int | None) -> str:
        return "cpu" if slot is None else "cuda"

    def eval_device(self) -> str:
        return "cpu" if self.slots[0] is None else "cuda:0"

    def launch(self, name: str, argv: list[str], slot: int | None) -> subprocess.Popen:
        """Start ``mdsample ARGV`` on one GPU (or the CPU), its output in work/logs/NAME.log."""
        self.results["commands"].append(shlex.join(["mdsample", *argv]))
        self.log(f"start {name} on {'cpu' if slot is None else f'GPU {slot}'}: mdsample {shlex.join(argv)}")
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "4")}
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(slot)
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{name}.log", "w") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", "mdsample.cli", *argv], env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        proc.name = name
        return proc

    def wait(self, procs: list[subprocess.Popen]) -> None:
        """Wait for every job; append each one's log tail to the suite log; a failed job stops the suite."""
        failed = []
        for proc in procs:
            code = proc.wait()
            tail = (self.work / "logs" / f"{proc.name}.log").read_text().splitlines()[-6:]
            self.log(f"{proc.name} exited {code}:\n    " + "\n    ".join(tail))
            if code:
                failed.append(proc.name)
        if failed:
            self.save()
            raise SystemExit(f"jobs failed: {', '.join(failed)} (logs in {self.work / 'logs'})")

    def train_args(self, out: Path, minutes: float, slot: int | None, *extra: str, compile: bool = True) -> list[str]:
        """``mdsample train`` for the chain task at the run's scale on ``slot``'s device; ``compile`` only where the
        scale compiles."""
        s = self.scale
        return ["train", "--domain", "text", "--task", "chain", "--out", str(out), f"domain.ops={self.args.ops}",
                f"train.device={self.device(slot)}",
                f"domain.train_rows={s.train_rows}", f"train.size={s.size}", f"train.batch_size={s.batch_size}",
                f"train.max_minutes={max(0.05, minutes):.2f}", f"train.compile={str(s.compile and compile).lower()}",
                "train.checkpoint_minutes=null", *extra]


def gpus(device: str) -> list[int | None]:
    """The GPU indices to spread jobs over, or [None] for the CPU."""
    if device == "cpu":
        return [None]
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        if device == "cuda":
            raise SystemExit("--device cuda but no GPU is visible")
        return [None]
    return list(range(count))


def phase_train(suite: Suite) -> None:
    """The shipped and the base model side by side, on two GPUs when there are two (a house model leaves most of
    one GPU idle, so two on one GPU, or on the CPU, still beat one after the other)."""
    s, args = suite.scale, suite.args
    minutes = args.minutes * args.train_share - 0.4 * (not args.smoke)  # start-up and saving on top of max_minutes
    common = [f"train.steps={args.train_steps or s.train_steps}",
              f"train.eval_every={max(1, (args.train_steps or s.train_steps) // 10)}"]
    jobs = {"shipped": common, "base": [*common, f"domain.trace_fraction={args.trace_fraction}"]}
    procs = []
    for i, (name, extra) in enumerate(jobs.items()):
        slot = suite.slots[i % len(suite.slots)]
        procs.append(suite.launch(f"train_{name}", suite.train_args(suite.model(name), minutes, slot, *extra), slot))
    suite.wait(procs)
    suite.results["models"] = {name: training_summary(suite.model(name)) for name in jobs}
    for name, archive, inside in (("shipped", "chain_model.tar.gz", "chain"), ("base", "base_model.tar.gz", "base")):
        with tarfile.open(suite.out / archive, "w:gz") as tar:
            tar.add(suite.model(name), arcname=inside)
    suite.log(f"models: {json.dumps(suite.results['models'])}; archived to {suite.out}")
    suite.save()


def training_summary(model_dir: Path) -> dict:
    """Steps, losses and minutes of a finished training run, from its train_log.jsonl."""
    records = [json.loads(line) for line in (model_dir / "train_log.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    return {"dir": str(model_dir), "steps": records[-1]["step"], "val_loss": min(vals),
            "minutes": records[-1].get("elapsed_s", float("nan")) / 60}


def phase_posterior(suite: Suite) -> None:
    """Posterior traces from the base, their scores and filter, and the gold traces of the kept problems."""
    args, s = suite.args, suite.scale
    traces = suite.work / "posterior_all.jsonl"
    proc = suite.launch("posterior", ["posterior", "--task", "chain", "--model", str(suite.model("base")),
                                      "--sampler", "confidence", "-n", str(s.traces), "--out", str(traces),
                                      "--device", suite.device(suite.slots[0]), f"domain.ops={args.ops}",
                                      f"domain.trace_fraction={args.trace_fraction}", "batch_size=2000",
                                      "progress=false"], suite.slots[0])
    suite.wait([proc])
    records = [json.loads(line) for line in traces.read_text().splitlines()]
    scores = np.array([r[args.keep_by] for r in records])
    cut = float(np.quantile(scores, 1 - args.keep)) if args.keep < 1 else None
    kept = [r for r in records if cut is None or r[args.keep_by] >= cut]
    gold = [{**r, "trace": suite.task.parse_prompt(r["prompt"]).reasoning, "score": None} for r in kept]
    exact = np.array([r["trace"] == g["trace"] for r, g in zip(kept, gold, strict=True)])
    write_jsonl(suite.work / "posterior.jsonl", kept)
    write_jsonl(suite.work / "gold.jsonl", gold)
    steps = np.array([suite.task.steps_right(suite.task.parse_prompt(r["prompt"]), r["trace"]) for r in kept])
    suite.results["posterior"] = {
        "traces": len(records), "kept": len(kept), "keep_by": args.keep_by, "score_cut": cut,
        "score_mean": float(scores.mean()), "exact_trace_rate": float(exact.mean()),
        "step_accuracy": float(steps.mean()),
        "exact_rate_kept_vs_dropped": _split_rate(records, cut, suite.task, args.keep_by)}
    suite.log(f"posterior: {json.dumps(suite.results['posterior'])}")
    suite.save()


def _split_rate(records: list[dict], cut: float | None, task: ChainTask, key: str) -> list[float | None]:
    """Exact-trace rate of the traces the filter keeps and of those it drops (None when a side is empty)."""
    out = []
    for side in (True, False):
        mine = [r for r in records if (cut is None or r[key] >= cut) == side]
        out.append(float(np.mean([r["trace"] == task.parse_prompt(r["prompt"]).reasoning for r in mine]))
                   if mine else None)
    return out


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def start_finetune(suite: Suite) -> list[subprocess.Popen]:
    """Every (arm, seed) fine-tune at once, dealt round-robin to the GPUs."""
    args, s = suite.args, suite.scale
    minutes = suite.minutes_left() - args.eval_reserve * args.minutes - 0.4 * (not args.smoke)
    procs = []
    for i, (arm, seed) in enumerate((a, sd) for sd in args.seeds for a in ARMS):
        steps = args.finetune_steps or s.finetune_steps
        extra = ["--init", str(suite.model("base")), "--data", str(suite.work / f"{arm}.jsonl"),
                 f"train.steps={steps}", f"train.warmup={max(1, steps // 15)}", f"train.lr={args.finetune_lr}",
                 f"train.seed={seed}", f"train.eval_every={max(1, steps // 5)}"]
        slot = suite.slots[i % len(suite.slots)]
        argv = suite.train_args(suite.model(f"{arm}_{seed}"), minutes, slot, *extra, compile=False)
        procs.append(suite.launch(f"finetune_{arm}_{seed}", argv, slot))
    return procs


def accuracy(suite: Suite, model: Path, rule: str = "confidence", label: str = "", **overrides) -> dict:
    """Accuracy and NFE of ``model`` on the suite's held-out problems (the same ones for every model and rule)."""
    s = suite.scale
    start = time.perf_counter()
    result = mdsample.sample("text", rule, s.n_eval, seed=0, device=suite.eval_device(), progress=False,
                             batch_size=s.eval_batch, out=str(suite.work / "eval" / f"{model.name}-{label or rule}"),
                             **{"domain.task": "chain", "domain.model": str(model), "domain.ops": suite.args.ops,
                                **overrides})
    row = {"label": label, "rule": rule, "settings": overrides, "n": s.n_eval,
           "accuracy": result.metrics["accuracy"], "nfe_mean": result.metrics["nfe_mean"],
           "early_exit_rate": result.metrics.get("early_exit_rate"), "seconds": time.perf_counter() - start}
    name = model.name if label in ("", model.name) else f"{model.name} {label}"
    suite.log(f"eval {name}: accuracy {row['accuracy']:.3f}, NFE {row['nfe_mean']:.2f}")
    return row


def shipped_settings(task: ChainTask) -> list[tuple[str, str, dict]]:
    """(label, rule, overrides) of the shipped model's table: the papers' comparisons on this layout."""
    slots = task.reasoning_length + task.answer_length  # masked positions of a canvas
    return [
        ("k1", "confidence", {}),
        ("answer_first", "confidence", {"decode.answer_first": True}),
        ("k2", "confidence", {"decode.steps": math.ceil(slots / 2)}),
        ("k4", "confidence", {"decode.steps": math.ceil(slots / 4)}),
        ("med", "med", {"sampler.entropy_threshold": 0.2}),
        ("early_exit", "confidence", {"decode.early_exit": 0.1}),
        ("med_early_exit", "med", {"sampler.entropy_threshold": 0.2, "decode.early_exit": 0.1}),
    ]


def eval_shipped(suite: Suite) -> None:
    shipped = suite.model("shipped")
    suite.results["shipped"] = {"rows": [accuracy(suite, shipped, rule, label, **o)
                                         for label, rule, o in shipped_settings(suite.task)]}
    suite.save()
    correlation(suite, "shipped")


def correlation(suite: Suite, name: str) -> None:
    """The partial-trace correlation of one model (confidence, one position per step), into results["correlation"]."""
    corr = measure(suite.scale.n_corr, task="chain", model=str(suite.model(name)), device=suite.eval_device(),
                   options={"ops": suite.args.ops})
    suite.results.setdefault("correlation", {})[name] = corr
    suite.log(f"partial-trace correlation of {name} (answer log-likelihood by progress): {corr['pearson']['score']}")
    suite.save()


def eval_arms(suite: Suite) -> None:
    base = suite.model("base")
    out = {"base": [accuracy(suite, base, label="full"),
                    accuracy(suite, base, label="answer_first", **{"decode.answer_first": True})]}
    for arm in ARMS:
        out[arm] = [{"seed": seed, **accuracy(suite, suite.model(f"{arm}_{seed}"), label=f"{arm}_{seed}"),
                     **training_summary(suite.model(f"{arm}_{seed}"))} for seed in suite.args.seeds]
    suite.results["finetune"] = out
    suite.save()
    correlation(suite, "base")


def phase_table(suite: Suite) -> None:
    text = render(suite.results)
    (suite.out / "reasoning_suite.md").write_text(text)
    print(text)


def share_first_gpu() -> None:
    """Cap this process at 70% of GPU 0, where it evaluates the shipped model while the fine-tunes train.

    Why: PyTorch's caching allocator keeps what a process has freed. Run E's first call (one GPU) ran the in-process
    evals beside six fine-tunes and grew to 129 GiB, and every fine-tune then failed to allocate 18 MiB. Under the
    cap, the allocator returns its cached blocks and retries before it asks for more."""
    import torch

    torch.cuda.set_per_process_memory_fraction(0.7, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the JSON, log, tables and model archive")
    parser.add_argument("--work", default="runs/reasoning_suite", help="folder for models, traces and runs")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)}")
    parser.add_argument("--minutes", type=float, default=8.5, help="wall-clock budget of the whole command")
    parser.add_argument("--train-share", type=float, default=0.42, help="share of --minutes for the two trainings")
    parser.add_argument("--eval-reserve", type=float, default=0.1, help="share of --minutes kept for the evals")
    parser.add_argument("--ops", type=int, default=8, help="operations per chain (domain.ops)")
    parser.add_argument("--trace-fraction", type=float, default=0.05, help="problems the base sees with traces")
    parser.add_argument("--keep", type=float, default=1.0, help="fraction of posterior traces kept by --keep-by")
    parser.add_argument("--keep-by", default="score", choices=["score", "trace_score"],
                        help="filter score: the answer's log-likelihood (the paper's) or the trace's step check")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-steps", type=int, default=None, help="steps of the two trainings (default: scale's)")
    parser.add_argument("--finetune-steps", type=int, default=None, help="steps of each fine-tune (default: scale's)")
    parser.add_argument("--finetune-lr", type=float, default=3e-4)
    parser.add_argument("--device", default="auto", help="auto (every visible GPU, else cpu), cuda or cpu")
    parser.add_argument("--results-from", default=None, help="a results JSON of an earlier call to continue")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU-sized run that checks the plumbing")
    args = parser.parse_args(argv)
    phases = args.phases.split(",")
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phases {unknown}; choose from {', '.join(PHASES)}")
    if not 0 < args.keep <= 1 or not 0 <= args.trace_fraction <= 1:
        parser.error("--keep must lie in (0, 1] and --trace-fraction in [0, 1]")
    suite = Suite(args)
    if suite.slots[0] is not None:
        share_first_gpu()
    suite.log(f"reasoning suite: phases {phases}, GPUs {suite.slots}, budget {args.minutes} min, "
              f"scale {asdict(suite.scale)}")
    if "train" in phases:
        suite.timed("train", phase_train)
    if "posterior" in phases:
        suite.timed("posterior", phase_posterior)
    launched = time.time()
    procs = start_finetune(suite) if "finetune" in phases else []
    if "eval" in phases:
        suite.timed("eval_shipped", eval_shipped)
    if procs:
        suite.wait(procs)
        suite.results.setdefault("phase_s", {})["finetune"] = time.time() - launched  # alongside eval_shipped
    if "eval" in phases:
        suite.timed("eval_arms", eval_arms)
    if "table" in phases:
        phase_table(suite)
    suite.log(f"done in {(time.time() - suite.start) / 60:.2f} min")
    suite.save()


def _plain(value):
    """JSON for numpy scalars and paths."""
    return value.item() if hasattr(value, "item") else str(value)


if __name__ == "__main__":
    main()
