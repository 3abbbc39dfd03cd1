"""What the text plugin says about its domain without importing it: options, tasks, defaults, description.

Kept free of torch and the text libraries, so that ``mdsample list`` and config checks read it at once
(mdsample.describe); domain.py builds the domain from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.options import DomainOptions

DESCRIPTION = "reasoning as infilling: house sudoku / arithmetic models, LLaDA / Dream / HF masked LMs"
TASKS = ("arithmetic", "sudoku")
DEFAULTS = {"n": 100, "samplers": {"klass": {"conf_threshold": 0.9, "kl_threshold": 0.01}}}


@dataclass
class TextOptions(DomainOptions):
    """Task knobs: ``givens`` (sudoku difficulty), ``a_digits`` x ``b_digits`` (arithmetic size); ``split`` and
    ``problem_seed`` pick the problems; ``train_rows`` is the size of the generated training set, of which only
    the problems picked by ``trace_fraction`` keep their reasoning (the rest: answers alone, reasoning unobserved;
    see models/mdlm.py). ``data``: a jsonl of traces (``mdsample posterior``) to train on instead, keeping those
    whose ``score`` is at least ``min_score`` when it is set. Hub models (``model`` = a LLaDA / Dream / masked-LM
    id or path): ``gen_length`` slots after a free ``prompt``, or a task template of ``reasoning_length`` and
    ``answer_length`` tokens; ``impl`` is native (no remote code) or remote (needs ``trust_remote_code``)."""

    givens: int = 36
    a_digits: int = 3
    b_digits: int = 2
    split: str = "test"
    problem_seed: int = 0
    train_rows: int = 1_000_000
    trace_fraction: float = 1.0
    data: str | None = None
    min_score: float | None = None
    gen_length: int = 128
    reasoning_length: int = 128
    answer_length: int = 16
    impl: str = "native"
