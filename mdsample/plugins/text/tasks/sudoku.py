"""Sudoku as infilling: the canvas is ``[BOS]`` + the 81 cells, givens frozen, blanks masked.

There is no separate reasoning: the order in which a rule commits cells *is* the reasoning, which makes sudoku the
cleanest test of a selection rule (a wrong early commit is never repaired). Difficulty is the number of givens;
puzzles are generated and verified unique by ``sudoku_solver``. A prompt is 81 characters, digits for givens and
``.`` or ``0`` for blanks.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.plugins.text.tasks.base import Problem, Task, TaskCanvas
from mdsample.plugins.text.tasks.sudoku_solver import (
    augment,
    count_solutions,
    is_valid_solution,
    make_puzzle,
    random_grid,
)
from mdsample.plugins.text.vocab import CharVocab

GRIDS_PER_BASE = 200  # symmetry images per backtracked grid in the training set


def _grid_text(cells: list[int]) -> str:
    return "".join(str(d) if d else "." for d in cells)


class SudokuTask(Task):
    name = "sudoku"
    description = "9x9 sudoku, givens frozen; metric: fraction solved exactly"

    def __init__(self, givens: int = 36):
        if not 17 <= givens <= 80:
            raise ConfigError(f"sudoku givens must lie in [17, 80], got {givens}")
        self.givens = givens

    @property
    def length(self) -> int:
        return 82

    @property
    def frozen_prefix(self) -> int:
        return 1

    def problems(self, n: int, seed: int, split: str = "test") -> list[Problem]:
        rng = random.Random(f"sudoku-{split}-{seed}")
        out: list[Problem] = []
        while len(out) < n:
            solution = random_grid(rng)
            puzzle = make_puzzle(solution, self.givens, rng)
            if puzzle is not None:
                out.append(Problem(_grid_text(puzzle), _grid_text(solution)))
        return out

    def parse_prompt(self, text: str) -> Problem:
        cells = text.strip().replace("0", ".")
        if len(cells) != 81 or any(c not in ".123456789" for c in cells):
            raise ConfigError("a sudoku prompt is 81 characters: digits 1-9 for givens, '.' or '0' for blanks")
        count, solution = count_solutions([0 if c == "." else int(c) for c in cells], limit=2)
        if solution is None:
            raise ConfigError("this sudoku has no solution; check the givens")
        return Problem(cells, _grid_text(solution))

    def canvas(self, problems: list[Problem], vocab: CharVocab, device: torch.device) -> TaskCanvas:
        rows = torch.tensor([[vocab.bos_id] + vocab.encode(p.prompt) for p in problems])
        blank = rows == vocab.index["."]
        tokens = rows.masked_fill(blank, vocab.mask_id)
        frozen = ~blank
        return TaskCanvas(MaskedState(tokens.to(device), vocab.mask_id, gen_start=1, frozen=frozen.to(device)), None)

    def training_rows(self, n: int, seed: int, vocab: CharVocab) -> np.ndarray:
        rng = random.Random(f"sudoku-train-{seed}")
        bases = np.array([random_grid(rng) for _ in range(max(1, math.ceil(n / GRIDS_PER_BASE)))])
        grids = augment(bases, math.ceil(n / len(bases)), seed)[:n]
        digit_ids = np.array([vocab.index[str(d)] if d else 0 for d in range(10)])
        return np.concatenate([np.full((n, 1), vocab.bos_id), digit_ids[grids]], axis=1)

    def read(self, text: str) -> tuple[str, str]:
        return "", text

    def correct(self, problem: Problem, answer: str) -> bool:
        if len(answer) != 81 or not answer.isdigit() or "0" in answer:
            return False
        givens_kept = all(g == "." or g == a for g, a in zip(problem.prompt, answer, strict=True))
        return givens_kept and bool(is_valid_solution(np.array([[int(c) for c in answer]]))[0])
