"""What the text plugin says about its domain without importing it: options, tasks, defaults, description.

Kept free of torch and the text libraries, so that ``mdsample list`` and config checks read it at once
(mdsample.describe); domain.py builds the domain from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.options import DomainOptions

DESCRIPTION = "reasoning as infilling: house sudoku / arithmetic / chain models, LLaDA / Dream / HF masked LMs"
HOUSE_TASKS = ("arithmetic", "sudoku", "chain")
TEMPLATE_TASKS = ("arithmetic", "chain")
"""House tasks with answer slots (tasks/template.py): posterior sampling, early exit and answer-first apply."""
BENCHMARK_TASKS = ("gsm8k", "math500", "humaneval", "mbpp")
"""Benchmarks for hub models (tasks/benchmarks.py); tests check these names against its BENCHMARKS."""
TASKS = (*HOUSE_TASKS, *BENCHMARK_TASKS)
DEFAULTS = {"n": 100, "samplers": {"klass": {"conf_threshold": 0.9, "kl_threshold": 0.01}}}


@dataclass
class TextOptions(DomainOptions):
    """Task knobs: ``givens`` (sudoku difficulty), ``a_digits`` x ``b_digits`` (arithmetic size), ``ops`` (operations
    of a chain); ``split`` and
    ``problem_seed`` pick the problems; ``train_rows`` is the size of the generated training set, of which only
    the problems picked by ``trace_fraction`` keep their reasoning (the rest: answers alone, reasoning unobserved;
    see models/mdlm.py). ``data``: a jsonl of traces (``mdsample posterior``) to train on instead, keeping those
    whose ``score`` is at least ``min_score`` when it is set. Hub models (``model`` = a LLaDA / Dream / masked-LM
    id or path): ``gen_length`` slots after a free ``prompt`` (None: 128) or a benchmark's prompt (None: its own,
    256), or a task template of ``reasoning_length`` and ``answer_length`` tokens; ``impl`` is native (no remote code)
    or remote (needs ``trust_remote_code``). Benchmarks read ``data`` (jsonl / parquet) instead of the hub when set,
    and the code ones run programs only with ``allow_code_execution`` (or MDSAMPLE_ALLOW_CODE_EXECUTION=1).
    ``editing_threshold`` / ``max_post_steps`` turn on LLaDA2.1's post-mask editing (core.loop.Editing);
    ``block_context`` is how LLaDA2 reads the prompt and finished blocks: "cached" (block-causal, once, as its own
    generate) or "full" (re-read every step, as diffusers' LLaDA2Pipeline)."""

    givens: int = 36
    a_digits: int = 3
    b_digits: int = 2
    ops: int = 8
    split: str = "test"
    problem_seed: int = 0
    train_rows: int = 1_000_000
    trace_fraction: float = 1.0
    data: str | None = None
    min_score: float | None = None
    gen_length: int | None = None
    reasoning_length: int = 128
    answer_length: int = 16
    impl: str = "native"
    allow_code_execution: bool = False
    editing_threshold: float | None = None
    max_post_steps: int = 16
    block_context: str = "cached"
