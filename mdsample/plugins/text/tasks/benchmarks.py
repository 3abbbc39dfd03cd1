"""The standard reasoning benchmarks for hub text models: GSM8K, MATH500, HumanEval and MBPP, as KLASS runs them.

Each benchmark fixes its data (a ``datasets`` hub name, or ``domain.data=PATH``: jsonl or parquet with the same
columns), its chat prompt (every one is instruct-style: the model's chat template is required), its generation
length (256, as in the KLASS scripts), how an answer is read from a completion and how it is graded:

* ``gsm8k`` (openai/gsm8k, main, test): system prompt asking for step-by-step reasoning ending in "The final answer
  is"; the answer is the number after the last "answer is" (answers.gsm8k_answer); exact numeric match.
* ``math500`` (HuggingFaceH4/MATH-500, test): the same prompt; the last ``\\boxed{}`` (answers.math_answer) against
  the ``answer`` column (or the last box of ``solution``), equivalence by answers.math_equal.
* ``humaneval`` (openai/openai_humaneval, test): system "You complete only Python code.", the user turn is the
  function's prompt; the completion's first fenced code block (else the completion) is appended to the prompt and
  run with the benchmark's ``check(entry_point)``.
* ``mbpp`` (google-research-datasets/mbpp, sanitized, test): the MBPP instruction with the test asserts and
  ``[BEGIN]``; the first fenced block (else the completion, up to ``[DONE]``) runs with ``test_imports`` and
  ``test_list``.

The two code benchmarks run programs only with the user's consent, in the sandbox (sandbox.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.text.tasks import answers

REASONING_SYSTEM = ("Your task is to answer the question below. Give step by step reasoning before you answer, and "
                    "when you're ready to answer, please use the format 'The final answer is'.")
CODE_SYSTEM = "You complete only Python code."
FENCE = re.compile(r"```(?:[Pp]ython3?|py)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


@dataclass(frozen=True)
class Item:
    """One benchmark problem: its id, the user turn, the gold answer (or reference code) and what grading needs."""

    id: str
    question: str
    gold: str
    tests: tuple[str, ...] = ()
    prefix: str = ""
    entry_point: str = ""


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: data source, required columns (alternatives separated by ``|``), prompt and grading."""

    name: str
    hub: tuple[str, str | None, str]  # (dataset path, config, split)
    columns: tuple[str, ...]
    system: str | None
    gen_length: int = 256
    code: bool = False
    metric: str = "accuracy"
    klass_thresholds: dict[str, tuple[float, float]] = field(default_factory=dict)

    def item(self, row: dict[str, Any], index: int) -> Item:
        raise NotImplementedError

    def messages(self, item: Item) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": item.question}]

    def extract(self, completion: str) -> str:
        raise NotImplementedError

    def program(self, item: Item, extracted: str) -> str:
        """The program whose clean exit means the answer passes (code benchmarks)."""
        raise NotImplementedError

    def correct(self, item: Item, extracted: str) -> bool:
        """Whether an extracted answer is right (non-code benchmarks; code ones run ``program``)."""
        raise NotImplementedError


def _first_code_block(completion: str) -> str:
    found = FENCE.search(completion)
    return (found[1] if found else completion).strip("\n")


class GSM8K(Benchmark):
    def item(self, row: dict[str, Any], index: int) -> Item:
        return Item(str(row.get("id", index)), row["question"], answers.gsm8k_gold(row["answer"]))

    def extract(self, completion: str) -> str:
        return answers.gsm8k_answer(completion)

    def correct(self, item: Item, extracted: str) -> bool:
        return answers.numbers_equal(extracted, item.gold)


class MATH(Benchmark):
    def item(self, row: dict[str, Any], index: int) -> Item:
        gold = row["answer"] if row.get("answer") not in (None, "") else answers.math_gold(row["solution"])
        return Item(str(row.get("unique_id", index)), row["problem"], str(gold))

    def extract(self, completion: str) -> str:
        return answers.math_answer(completion)

    def correct(self, item: Item, extracted: str) -> bool:
        return answers.math_equal(extracted, item.gold)


class HumanEval(Benchmark):
    def item(self, row: dict[str, Any], index: int) -> Item:
        return Item(row["task_id"], row["prompt"], row.get("canonical_solution", ""), (row["test"],),
                    prefix=row["prompt"], entry_point=row["entry_point"])

    def extract(self, completion: str) -> str:
        return _first_code_block(completion)

    def program(self, item: Item, extracted: str) -> str:
        return f"{item.prefix}{extracted}\n\n{item.tests[0]}\n\ncheck({item.entry_point})\n"


class MBPP(Benchmark):
    def item(self, row: dict[str, Any], index: int) -> Item:
        tests = tuple(row["test_list"])
        text = row.get("prompt") or row["text"]
        question = (f"You are an expert Python programmer, and here is your task: {text} Your code should pass "
                    f"these tests:\n\n{list(tests)}\n[BEGIN]")
        imports = "\n".join(row.get("test_imports") or [])
        return Item(str(row["task_id"]), question, row.get("code", ""), tests, prefix=imports)

    def extract(self, completion: str) -> str:
        return _first_code_block(completion.split("[DONE]")[0])

    def program(self, item: Item, extracted: str) -> str:
        return "\n".join([item.prefix, extracted, "", *item.tests, ""])


# Published KLASS thresholds (conf, kl) per model family, from the authors' evaluation scripts.
BENCHMARKS: dict[str, Benchmark] = {
    "gsm8k": GSM8K("gsm8k", ("openai/gsm8k", "main", "test"), ("question", "answer"), REASONING_SYSTEM,
                   klass_thresholds={"llada": (0.6, 0.015), "dream": (0.9, 0.001)}),
    "math500": MATH("math500", ("HuggingFaceH4/MATH-500", None, "test"), ("problem", "answer|solution"),
                    REASONING_SYSTEM, klass_thresholds={"llada": (0.6, 0.01), "dream": (0.9, 0.005)}),
    "humaneval": HumanEval("humaneval", ("openai/openai_humaneval", None, "test"),
                           ("task_id", "prompt", "test", "entry_point"), CODE_SYSTEM, code=True, metric="pass@1",
                           klass_thresholds={"llada": (0.9, 0.01), "dream": (0.8, 0.001)}),
    "mbpp": MBPP("mbpp", ("google-research-datasets/mbpp", "sanitized", "test"), ("task_id", "prompt|text",
                 "test_list"), None, code=True, metric="pass@1",
                 klass_thresholds={"llada": (0.7, 0.01), "dream": (0.9, 0.001)}),
}


def _read_local(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise MissingFileError(f"data file {str(path)!r} does not exist (domain.data takes a .jsonl or .parquet file)")
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ConfigError("reading parquet needs pyarrow: pip install 'mdsample[eval]'") from None
        return pq.read_table(path).to_pylist()
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{n} is not a JSON line ({err.msg})") from None
    return rows


def _read_hub(bench: Benchmark) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise ConfigError(f"task {bench.name!r} loads {bench.hub[0]} through `datasets`: pip install 'mdsample[eval]', "
                          "or give a local copy with domain.data=PATH.jsonl") from None
    path, config, split = bench.hub
    try:
        return datasets.load_dataset(path, config, split=split).to_list()
    except Exception as err:  # network, cache or hub errors: all mean "this data is not available here"
        raise MissingFileError(f"cannot load {path} ({config or 'default'}, {split}) through datasets "
                               f"({err.__class__.__name__}); give a local copy with domain.data=PATH.jsonl") from None


def load_items(bench: Benchmark, data: str | None) -> list[Item]:
    """The benchmark's problems, from ``data`` (jsonl / parquet) or the hub; its columns checked first."""
    rows = _read_local(Path(data).expanduser()) if data else _read_hub(bench)
    source = data or bench.hub[0]
    if not rows:
        raise ConfigError(f"{source} holds no rows for task {bench.name!r}")
    names = [c.replace("|", " or ") for c in bench.columns]
    for n, row in enumerate(rows):
        missing = [name for c, name in zip(bench.columns, names, strict=True)
                   if not any(a in row for a in c.split("|"))]
        if missing:
            raise ConfigError(f"{source}: row {n} lacks column {missing[0]!r}; task {bench.name!r} needs columns "
                              f"{', '.join(names)}")
    return [bench.item(row, i) for i, row in enumerate(rows)]


def grade(bench: Benchmark, items: list[Item], completions: list[str], *, allow_code: bool) -> list[tuple[str, bool]]:
    """(extracted answer, correct) per completion; code benchmarks run their programs in the sandbox."""
    from mdsample.plugins.text.tasks import sandbox

    extracted = [bench.extract(c) for c in completions]
    if not bench.code:
        return [(e, bench.correct(i, e)) for i, e in zip(items, extracted, strict=True)]
    sandbox.require_enabled(allow_code, bench.name)
    outcomes = sandbox.run_programs([bench.program(i, e) for i, e in zip(items, extracted, strict=True)])
    return [(e, o.passed) for e, o in zip(extracted, outcomes, strict=True)]
