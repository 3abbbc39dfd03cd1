"""Benchmark runs of the text domain (``--task gsm8k|math500|humaneval|mbpp`` on a hub model).

The canvas is the benchmark's chat prompt (the model's chat template is required: these are instruct-style tasks)
followed by ``domain.gen_length`` masked slots (default: the benchmark's, 256). Decoding cuts each completion at the
first stop token and grades it (tasks/benchmarks.py); ``samples.jsonl`` then holds per row: task id, prompt,
completion, extracted answer, gold, correct and NFE. Metrics: ``accuracy`` with its standard error, and for the code
benchmarks the same value as ``pass@1`` (one greedy sample per problem), so a study can plot every task alike.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import TextModel, build_canvas
from mdsample.plugins.text.tasks.benchmarks import BENCHMARKS, Benchmark, Item, grade


def require_chat(model: TextModel, bench: Benchmark, name: str | None) -> None:
    """ConfigError for an instruct-style benchmark on a model whose tokenizer has no chat template."""
    if not model.has_chat_template:
        raise ConfigError(f"task {bench.name!r} is instruct-style but model {name!r} has no chat template; use an "
                          "instruct checkpoint (e.g. GSAI-ML/LLaDA-8B-Instruct), or evaluate a base model through "
                          "lm_eval (--model mdsample) with its plain prompts")


def canvas(model: TextModel, bench: Benchmark, items: list[Item], gen_length: int | None,
           device: torch.device) -> tuple[MaskedState, dict[str, torch.Tensor]]:
    """The chat prompts of ``items`` followed by the generation slots."""
    ids, mask = model.encode_chats([bench.messages(item) for item in items])
    built = build_canvas(ids.to(device), mask.to(device), gen_length or bench.gen_length, model.mask_id)
    if model.max_length is not None and built.tokens.shape[1] > model.max_length:
        raise ConfigError(f"prompt + generation = {built.tokens.shape[1]} tokens exceeds the model's "
                          f"{model.max_length}; lower domain.gen_length")
    return MaskedState(built.tokens, model.mask_id, gen_start=built.gen_start), built.conditioning()


def decode_rows(model: TextModel, bench: Benchmark, items: list[Item], tokens: torch.Tensor, gen_start: int,
                allow_code: bool) -> list[dict[str, Any]]:
    completions = [model.decode_completion(row[gen_start:]) for row in tokens.cpu()]
    graded = grade(bench, items, completions, allow_code=allow_code)
    return [{"task_id": item.id, "prompt": item.question, "completion": completion, "extracted": extracted,
             "gold": item.gold, "correct": correct}
            for item, completion, (extracted, correct) in zip(items, completions, graded, strict=True)]


def metrics(bench: Benchmark, objects: list[dict[str, Any]]) -> dict[str, float]:
    """Accuracy (pass@1 for code) and its standard error, sqrt(p (1 - p) / (n - 1)) as lm_eval reports it."""
    n = len(objects)
    p = sum(o["correct"] for o in objects) / n if n else float("nan")
    stderr = math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else float("nan")
    out = {"accuracy": p, "accuracy_stderr": stderr}
    if bench.metric != "accuracy":
        out.update({bench.metric: p, f"{bench.metric}_stderr": stderr})
    return out


def benchmark(task: str | None) -> Benchmark | None:
    return BENCHMARKS.get(task or "")
