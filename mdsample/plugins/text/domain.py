"""The text domain: house reasoning models (sudoku, arithmetic) and any text MDM through the adapters.

House tasks (``--task``): ``arithmetic`` and ``chain`` (reasoning-as-infilling templates: prompt, reasoning slots,
frozen ``#``, answer slots; they support ``--early-exit`` and ``decode.answer_first``) and ``sudoku`` (the grid,
givens frozen). Benchmarks for hub models:
``gsm8k``, ``math500``, ``humaneval``, ``mbpp`` (bench_run.py, tasks/benchmarks.py). Without ``--prompt`` a run
draws held-out problems (``domain.split``, ``domain.problem_seed``), so every sampler of a study sees the same ones;
with ``--prompt`` every sample solves that one problem. Outputs: ``samples.jsonl`` (prompt, completion, reasoning,
answer, gold, correct, NFE per row) and ``decode_order.png`` (the step that committed each position, a few rows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mdsample.core.denoiser import Denoiser
from mdsample.core.loop import Editing
from mdsample.domain import Domain, DomainOptions, Initial, TrainData
from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample.plugins.text import bench_run, hub
from mdsample.plugins.text.adapters import TextModel
from mdsample.plugins.text.hub import HubDenoiser
from mdsample.plugins.text.options import DEFAULTS, DESCRIPTION, HOUSE_TASKS, TASKS, TextOptions
from mdsample.plugins.text.tasks.arithmetic import ArithmeticTask
from mdsample.plugins.text.tasks.base import Problem, Task
from mdsample.plugins.text.tasks.benchmarks import BENCHMARKS, Benchmark, Item, load_items
from mdsample.plugins.text.tasks.chain import ChainTask
from mdsample.plugins.text.tasks.sudoku import SudokuTask
from mdsample.plugins.text.vocab import CharVocab

WEIGHTS_DIR = Path(__file__).parent / "weights"
VOCAB_FILE = "vocab.json"
SPLITS = ("test", "train")


@dataclass
class TextInitial(Initial):
    """Initial canvases plus the task, its problems and the vocabulary, which ``decode`` and ``metrics`` need."""

    task: Task | None = None
    problems: list[Problem] = field(default_factory=list)
    vocab: CharVocab | None = None
    hub: TextModel | None = None
    reasoning_length: int = 0
    bench: Benchmark | None = None
    items: list[Item] = field(default_factory=list)
    allow_code: bool = False


def make_task(options: TextOptions) -> Task:
    name = options.task or HOUSE_TASKS[0]
    if name == "arithmetic":
        return ArithmeticTask(options.a_digits, options.b_digits)
    if name == "sudoku":
        return SudokuTask(options.givens)
    if name == "chain":
        return ChainTask(options.ops)
    if name in BENCHMARKS:
        raise ConfigError(f"task {name!r} is a benchmark for hub models: give one with --model "
                          "(e.g. GSAI-ML/LLaDA-8B-Instruct or Dream-org/Dream-v0-Instruct-7B)")
    raise UnknownChoiceError("text task", name, list(TASKS))


class TextDomain(Domain):
    name = "text"
    description = DESCRIPTION
    Options = TextOptions

    def __init__(self) -> None:
        self._problems: dict[tuple, list[Problem]] = {}
        self._items: dict[tuple, list[Item]] = {}

    def defaults(self) -> dict[str, Any]:
        return DEFAULTS

    def tasks(self) -> list[str]:
        return list(TASKS)

    def load_denoiser(self, options: DomainOptions, device: torch.device) -> Denoiser:
        from mdsample.models.house import load_house_denoiser

        opts = _text_options(options)
        bench = bench_run.benchmark(opts.task)
        if bench is not None and opts.model is not None:
            return self._bench_denoiser(bench, opts, device)
        task = make_task(opts)
        if opts.model is None:
            model_dir = WEIGHTS_DIR / task.name
            if not (model_dir / "config.json").is_file():
                raise MissingFileError(f"no shipped text model for task {task.name!r} in {model_dir}; train one with "
                                       f"`mdsample train --domain text --task {task.name}` and pass it as --model")
        else:
            model_dir = Path(opts.model).expanduser()
            if not _house_model(model_dir):
                from mdsample.plugins.text.adapters import load_text_model

                editing = None if opts.editing_threshold is None else Editing(opts.editing_threshold,
                                                                               opts.max_post_steps)
                return hub.hub_denoiser(load_text_model(opts.model, trust_remote_code=opts.trust_remote_code,
                                                        device=device, impl=opts.impl, editing=editing,
                                                        block_context=opts.block_context))
        vocab = CharVocab()
        vocab.check(model_dir / VOCAB_FILE)
        denoiser = load_house_denoiser(model_dir, device)
        if (denoiser.vocab_size, denoiser.mask_id) != (len(vocab), vocab.mask_id):
            raise ConfigError(f"model {model_dir} does not use the house text vocabulary ({len(vocab)} symbols)")
        return denoiser

    def _bench_denoiser(self, bench: Benchmark, opts: TextOptions, device: torch.device) -> HubDenoiser:
        """A hub model for a benchmark: consent and data are checked before any weights are read."""
        from mdsample.plugins.text.adapters import load_text_model
        from mdsample.plugins.text.tasks.sandbox import require_enabled

        if bench.code:
            require_enabled(opts.allow_code_execution, bench.name)
        self.items(bench, opts)
        model = load_text_model(opts.model, trust_remote_code=opts.trust_remote_code, device=device, impl=opts.impl)
        bench_run.require_chat(model, bench, opts.model)
        return HubDenoiser(model)

    def items(self, bench: Benchmark, options: TextOptions) -> list[Item]:
        """Every problem of the benchmark (read once per data source)."""
        key = (bench.name, options.data)
        if key not in self._items:
            self._items[key] = load_items(bench, options.data)
        return self._items[key]

    def problems(self, options: TextOptions, offset: int, n: int) -> list[Problem]:
        """Problems ``offset .. offset + n - 1`` of the run's list (the same list for every sampler and batch)."""
        task = make_task(options)
        if options.prompt:
            return [task.parse_prompt(options.prompt)] * n
        if options.split not in SPLITS:
            raise UnknownChoiceError("text split", options.split, list(SPLITS))
        key = (task.name, options.givens, options.a_digits, options.b_digits, options.ops, options.split,
               options.problem_seed)
        cached = self._problems.get(key, [])
        if len(cached) < offset + n:
            cached = task.problems(offset + n, options.problem_seed, options.split)
            self._problems[key] = cached
        return cached[offset : offset + n]

    def initial_state(
        self, denoiser: Denoiser, options: DomainOptions, n: int, device: torch.device, offset: int = 0
    ) -> Initial:
        opts = _text_options(options)
        if opts.label is not None:
            raise ConfigError("the text domain has no classes; drop --class (use --task and --prompt)")
        if isinstance(denoiser, HubDenoiser):
            return self._hub_state(denoiser.text_model, opts, n, device, offset,
                                   blocks=isinstance(denoiser, hub.HubBlockDenoiser))
        task, vocab = make_task(opts), CharVocab()
        problems = self.problems(opts, offset, n)
        canvas = task.canvas(problems, vocab, device)
        trained = getattr(getattr(getattr(denoiser, "model", None), "config", None), "max_position_embeddings", None)
        if trained is not None and trained != canvas.state.length:
            raise ConfigError(f"the model was trained on canvases of {trained} slots but this {task.name} layout has "
                              f"{canvas.state.length}; use the task settings of the model's MODEL_CARD.md")
        requests = [{"task": task.name, "prompt": p.prompt} for p in problems]
        return TextInitial(canvas.state, {}, requests, canvas.answer, task=task, problems=problems, vocab=vocab)

    def _hub_state(self, model: TextModel, opts: TextOptions, n: int, device: torch.device, offset: int,
                   blocks: bool = False) -> Initial:
        bench = bench_run.benchmark(opts.task)
        if bench is not None:
            everything = self.items(bench, opts)
            if offset + n > len(everything):
                raise ConfigError(f"task {bench.name!r} has {len(everything)} problems; lower n to at most that")
            items = everything[offset : offset + n]
            state, conditioning = bench_run.canvas(model, bench, items, opts.gen_length, device)
            requests = [{"task": bench.name, "id": item.id} for item in items]
            return TextInitial(state, conditioning, requests, None, hub=model, bench=bench, items=items,
                               allow_code=opts.allow_code_execution)
        if opts.task is None:
            if not opts.prompt:
                raise ConfigError("a hub text model needs --prompt TEXT (free generation) or --task NAME")
            state, conditioning = hub.prompt_canvas(model, opts.prompt, n, opts.gen_length or 128, device)
            problems = [Problem(opts.prompt, "")] * n
            return TextInitial(state, conditioning, [{"prompt": opts.prompt}] * n, None, problems=problems, hub=model)
        task = make_task(opts)
        problems = self.problems(opts, offset, n)
        requests = [{"task": task.name, "prompt": p.prompt} for p in problems]
        if blocks:  # canvas by canvas: the question as a prompt, the answer read from the completion
            state, conditioning = hub.question_canvas(model, task, problems, opts.reasoning_length + opts.answer_length,
                                                      device)
            return TextInitial(state, conditioning, requests, None, task=task, problems=problems, hub=model)
        state, answer, conditioning = hub.task_canvas(model, task, problems, opts.reasoning_length,
                                                      opts.answer_length, device)
        return TextInitial(state, conditioning, requests, answer, task=task, problems=problems, hub=model,
                           reasoning_length=opts.reasoning_length)

    def decode(self, tokens: torch.Tensor, initial: Initial) -> list[dict[str, Any]]:
        assert isinstance(initial, TextInitial)
        if initial.bench is not None:
            assert initial.hub is not None
            return bench_run.decode_rows(initial.hub, initial.bench, initial.items, tokens, initial.state.gen_start,
                                         initial.allow_code)
        if initial.hub is not None:
            return hub.decode_rows(initial.hub, tokens, initial.state.gen_start, initial.answer, initial.task,
                                   initial.problems, initial.reasoning_length)
        assert initial.task is not None and initial.vocab is not None
        gen = tokens[:, initial.state.gen_start :].cpu()
        out = []
        for row, problem in zip(gen, initial.problems, strict=True):
            completion = initial.vocab.decode(row)
            reasoning, answer = initial.task.read(completion)
            out.append({"prompt": problem.prompt, "completion": completion, "reasoning": reasoning, "answer": answer,
                        "gold": problem.answer, "correct": initial.task.correct(problem, answer)})
        return out

    def save(self, objects: list[Any], run_dir: Path, initial: Initial) -> list[Path]:
        from mdsample.plugins.text.output import ORDER_ROWS, save_samples

        assert isinstance(initial, TextInitial)
        gen = initial.state.tokens[:ORDER_ROWS, initial.state.gen_start :].cpu().tolist()
        if initial.vocab is None:  # hub model: colours only, its tokens do not fit one cell
            labels = [[""] * len(row) for row in gen]
        else:
            symbols = [s if len(s) == 1 else "_" if i == initial.vocab.mask_id else "" for i, s in
                       enumerate(initial.vocab.symbols)]
            labels = [[symbols[t] for t in row] for row in gen]
        return save_samples(objects, Path(run_dir), initial.state, labels)

    def metrics(self, objects: list[Any], options: DomainOptions, initial: Initial) -> dict[str, float]:
        bench = bench_run.benchmark(getattr(options, "task", None))
        if bench is not None and getattr(options, "model", None) is not None:
            return bench_run.metrics(bench, objects)
        if objects and "correct" not in objects[0]:  # free generation: nothing to score
            return {"mean_chars": sum(len(o["completion"]) for o in objects) / len(objects)}
        if not objects:
            return {"accuracy": float("nan")}
        out = {"accuracy": sum(o["correct"] for o in objects) / len(objects)}
        exited = initial.state.exited[: len(objects)]
        out["early_exit_rate"] = exited.float().mean().item()
        return out

    def train_data(self, options: DomainOptions) -> TrainData:
        opts = _text_options(options)
        task, vocab = make_task(opts), CharVocab()
        if opts.train_rows < 2:
            raise ConfigError(f"domain.train_rows must be >= 2, got {opts.train_rows}")
        if not 0.0 <= opts.trace_fraction <= 1.0:
            raise ConfigError(f"domain.trace_fraction must lie in [0, 1], got {opts.trace_fraction}")
        if opts.data is not None:
            train = torch.tensor(read_traces(opts.data, task, vocab, opts.min_score), dtype=torch.long)
        else:
            train = torch.from_numpy(task.training_rows(opts.train_rows, 0, vocab)).long()
            if opts.trace_fraction < 1.0:
                slots = task.reasoning_slots()
                if slots is None:
                    raise ConfigError(f"task {task.name!r} has no reasoning slots; trace_fraction does not apply")
                hidden = ~traced(train[:, : task.frozen_prefix], opts.trace_fraction)
                train[hidden, slots] = vocab.mask_id
        val = torch.from_numpy(task.training_rows(max(1, min(10_000, opts.train_rows // 10)), 1, vocab)).long()
        return TrainData(train=train, val=val, vocab_size=len(vocab), mask_id=vocab.mask_id, pad_id=vocab.pad_id,
                         frozen_prefix=task.frozen_prefix)

    def save_assets(self, options: DomainOptions, model_dir: Path) -> None:
        CharVocab().save(Path(model_dir) / VOCAB_FILE)


def traced(prompts: torch.Tensor, fraction: float) -> torch.Tensor:
    """Bool [N]: whether the problem with these prompt ids keeps its reasoning when only ``fraction`` of problems do.

    Decided per problem by a fixed hash of its prompt, not per row, so a problem is either always shown with its
    trace or never (posterior sampling then fills traces for problems the model has only seen answered).
    """
    weights = torch.tensor([pow(131, i, 2**31 - 1) for i in range(prompts.shape[1])], dtype=torch.long)
    return ((prompts.long() * weights).sum(dim=1) % 10_007) < fraction * 10_007


def read_traces(path: str, task: Task, vocab: CharVocab, min_score: float | None) -> list[list[int]]:
    """Training rows from a ``mdsample posterior`` jsonl: prompt, answer and trace of each kept line."""
    import json

    file = Path(path).expanduser()
    if not file.is_file():
        raise MissingFileError(f"trace file {path!r} does not exist; write one with `mdsample posterior`")
    rows = []
    for n, line in enumerate(file.read_text().splitlines(), start=1):
        try:
            rec = json.loads(line)
            if min_score is None or rec["score"] >= min_score:
                rows.append(task.row_ids(Problem(rec["prompt"], rec["answer"], rec["trace"]), vocab))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ConfigError(f"{path}:{n} is not a trace record (prompt, answer, trace, score): {err}") from None
    if len(rows) < 2:
        raise ConfigError(f"{path} keeps {len(rows)} traces (min_score={min_score}); need at least 2 to train")
    return rows


def _house_model(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a house model: a ModernBERT config.json beside a house vocab.json
    (``{"symbols": [...]}``). A hub tokenizer's vocab.json (Dream's BPE vocabulary, token -> id) is not one; a house
    model whose vocab.json is broken still is, so that the vocabulary check names the broken file."""
    vocab = model_dir / VOCAB_FILE
    if not vocab.is_file():
        return False
    try:
        return "symbols" in json.loads(vocab.read_text())
    except (OSError, ValueError):
        try:
            return json.loads((model_dir / "config.json").read_text()).get("model_type") == "modernbert"
        except (OSError, ValueError, AttributeError):
            return False


def _text_options(options: DomainOptions) -> TextOptions:
    """Accept the generic options too (e.g. from a study), filling text defaults."""
    if isinstance(options, TextOptions):
        return options
    return TextOptions(model=options.model, prompt=options.prompt, task=options.task, label=options.label,
                       trust_remote_code=options.trust_remote_code)
