"""The house tasks: the sudoku generator/solver and the arithmetic template, checked against known answers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mdsample.errors import ConfigError
from mdsample.plugins.text.tasks.arithmetic import ArithmeticTask, is_test_pair, trace
from mdsample.plugins.text.tasks.sudoku import SudokuTask
from mdsample.plugins.text.tasks.sudoku_solver import augment, count_solutions, is_valid_solution, random_grid
from mdsample.plugins.text.vocab import CharVocab

# A published puzzle with a unique solution (Wikipedia's sudoku example).
PUZZLE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def test_solver_finds_the_known_unique_solution():
    count, solution = count_solutions([0 if c == "." else int(c) for c in PUZZLE])
    assert count == 1
    assert "".join(map(str, solution)) == SOLUTION


def test_solver_counts_multiple_solutions():
    grid = [int(c) for c in SOLUTION]
    for i in (0, 1, 9, 10):  # 5 3 / 6 7 in a rectangle: swapping gives a second solution once all four are blank
        grid[i] = 0
    assert count_solutions(grid, limit=2)[0] == 1
    assert count_solutions([0] * 81, limit=2)[0] == 2


def test_validity_check_rejects_broken_grids():
    good = np.array([[int(c) for c in SOLUTION]])
    bad = good.copy()
    bad[0, [0, 1]] = bad[0, [1, 0]]  # swap two cells of a row: columns break
    assert is_valid_solution(np.concatenate([good, bad])).tolist() == [True, False]


def test_random_grids_and_their_symmetry_images_are_valid_and_distinct():
    rng = random.Random(0)
    grids = np.array([random_grid(rng) for _ in range(4)])
    images = augment(grids, 50, seed=0)
    assert images.shape == (200, 81)
    assert is_valid_solution(images).all()
    assert len({row.tobytes() for row in images}) == 200


def test_sudoku_puzzles_are_unique_with_the_requested_givens():
    task = SudokuTask(givens=40)
    for p in task.problems(5, seed=0):
        assert sum(c != "." for c in p.prompt) == 40
        cells = [0 if c == "." else int(c) for c in p.prompt]
        count, solution = count_solutions(cells)
        assert count == 1 and "".join(map(str, solution)) == p.answer
        assert task.correct(p, p.answer)
    assert task.problems(3, seed=0) == task.problems(3, seed=0)


def test_sudoku_correctness_is_exact():
    task = SudokuTask()
    p = task.parse_prompt(PUZZLE)
    assert p.answer == SOLUTION and task.correct(p, SOLUTION)
    wrong = SOLUTION[:2] + SOLUTION[3] + SOLUTION[2] + SOLUTION[4:]  # two blanks of a row swapped: columns break
    assert not task.correct(p, wrong)
    assert not task.correct(p, SOLUTION[:80])
    with pytest.raises(ConfigError):
        task.parse_prompt("123")


def test_sudoku_canvas_freezes_givens_and_masks_blanks():
    task, vocab = SudokuTask(), CharVocab()
    canvas = task.canvas([task.parse_prompt(PUZZLE)], vocab, "cpu")
    state = canvas.state
    assert state.length == 82 and state.gen_start == 1
    blanks = [i + 1 for i, c in enumerate(PUZZLE) if c == "."]
    assert state.masked[0].nonzero().flatten().tolist() == blanks
    assert state.frozen[0].sum().item() == 82 - len(blanks)


def test_arithmetic_trace_and_layout():
    assert trace(123, 45) == "123*5=615;123*4=492;615+4920=5535"
    assert trace(7, 3) == "7*3=21"
    task, vocab = ArithmeticTask(3, 2), CharVocab()
    p = task.parse_prompt("123*45")
    assert (p.prompt, p.answer) == ("123*45=", "5535")
    row = task.row_ids(p, vocab)
    assert len(row) == task.length
    text = vocab.decode(row)
    assert text == "123*45=" + trace(123, 45) + "#5535"
    assert task.read(text[len(p.prompt):]) == (trace(123, 45), "5535")
    canvas = task.canvas([p], vocab, "cpu")
    assert canvas.answer.tolist() == [list(range(task.length - task.answer_length, task.length))]
    with pytest.raises(ConfigError):
        task.parse_prompt("1234*5")


def test_arithmetic_splits_are_disjoint_and_prefix_consistent():
    task = ArithmeticTask(3, 2)
    test = task.problems(300, seed=0)
    train = task.problems(3000, seed=0, split="train")
    assert {p.prompt for p in test}.isdisjoint({p.prompt for p in train})
    assert all(len(p.prompt) == 7 for p in test)
    assert task.problems(100, seed=0) == test[:100]
    a = np.array([int(p.prompt.split("*")[0]) for p in test])
    b = np.array([int(p.prompt.split("*")[1][:-1]) for p in test])
    assert is_test_pair(a, b).all()
