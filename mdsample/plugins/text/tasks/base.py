"""What a text task is: problems with gold answers, a canvas layout for the house model, and exact scoring.

A task owns its layout because the layouts differ in kind: arithmetic is a reasoning-as-infilling template
(prompt, reasoning slots, frozen delimiter, answer slots), sudoku is the grid itself with the givens frozen. Both
give the decode loop a MaskedState and, where there are answer slots, their positions (for early exit, posterior
sampling and partial-trace scoring).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np
import torch

from mdsample.core.state import MaskedState
from mdsample.plugins.text.vocab import CharVocab


@dataclass(frozen=True)
class Problem:
    """``prompt``: what the user gives; ``answer``: the gold answer; ``reasoning``: the gold trace, if any."""

    prompt: str
    answer: str
    reasoning: str = ""


@dataclass
class TaskCanvas:
    """Canvases for a batch of problems; ``answer[B, A]`` are answer-slot positions (None: no template)."""

    state: MaskedState
    answer: torch.Tensor | None


class Task(abc.ABC):
    """A house reasoning task: generator, layout, reading and checking of completions."""

    name: str
    description: str

    @property
    @abc.abstractmethod
    def length(self) -> int:
        """Canvas length of the house model's layout."""

    @property
    @abc.abstractmethod
    def frozen_prefix(self) -> int:
        """Leading positions that are always given (never masked in training)."""

    def reasoning_slots(self) -> slice | None:
        """Canvas positions of the reasoning slots in the house layout (None: the task has none)."""
        return None

    @abc.abstractmethod
    def problems(self, n: int, seed: int, split: str = "test") -> list[Problem]:
        """``n`` problems of the split (``train`` and ``test`` never share a problem)."""

    @abc.abstractmethod
    def parse_prompt(self, text: str) -> Problem:
        """A user's ``--prompt`` as a problem (its gold answer computed by the task's own solver)."""

    @abc.abstractmethod
    def canvas(self, problems: list[Problem], vocab: CharVocab, device: torch.device) -> TaskCanvas:
        """The house layout for ``problems``, everything the model must produce masked."""

    @abc.abstractmethod
    def training_rows(self, n: int, seed: int, vocab: CharVocab) -> np.ndarray:
        """``n`` complete training canvases (token ids, [n, length]) from the train split."""

    @abc.abstractmethod
    def read(self, text: str) -> tuple[str, str]:
        """(reasoning, answer) of a decoded canvas's generation region."""

    @abc.abstractmethod
    def correct(self, problem: Problem, answer: str) -> bool:
        """Whether ``answer`` solves ``problem`` exactly."""
