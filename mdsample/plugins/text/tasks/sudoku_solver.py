"""The project's own 9x9 sudoku generator and solver: random complete grids, unique puzzles, exact checking.

Why our own: the house sudoku model is judged on puzzles whose uniqueness we verify, and training needs millions of
distinct grids without a download. Grids come from a randomised backtracking fill (bit masks, most-constrained cell
first); a cheap orbit of each (digit relabelling, band/stack and row/column permutations inside them, transposition,
all validity-preserving) multiplies them in numpy. Puzzles remove cells in a random order as long as the solution
stays unique, down to the requested number of givens: the difficulty knob.
"""

from __future__ import annotations

import random

import numpy as np

ALL = 0x3FE  # bits 1..9
UNITS = [
    *[[r * 9 + c for c in range(9)] for r in range(9)],
    *[[r * 9 + c for r in range(9)] for c in range(9)],
    *[[(br * 3 + r) * 9 + bc * 3 + c for r in range(3) for c in range(3)] for br in range(3) for bc in range(3)],
]
PEERS = [sorted({p for u in UNITS if i in u for p in u} - {i}) for i in range(81)]


def _candidates(grid: list[int], i: int) -> int:
    used = 0
    for p in PEERS[i]:
        used |= 1 << grid[p]
    return ALL & ~used


def count_solutions(grid: list[int], limit: int = 2, rng: random.Random | None = None) -> tuple[int, list[int] | None]:
    """(number of solutions up to ``limit``, the first one found); 0 is an empty cell; ``rng`` shuffles digits."""
    grid = list(grid)
    found: list[list[int]] = []

    def search() -> int:
        best, best_mask, best_n = -1, 0, 10
        for i in range(81):
            if grid[i] == 0:
                mask = _candidates(grid, i)
                n = mask.bit_count()
                if n < best_n:
                    best, best_mask, best_n = i, mask, n
                    if n <= 1:
                        break
        if best < 0:
            if not found:
                found.append(list(grid))
            return 1
        if best_n == 0:
            return 0
        digits = [d for d in range(1, 10) if best_mask >> d & 1]
        if rng is not None:
            rng.shuffle(digits)
        total = 0
        for d in digits:
            grid[best] = d
            total += search()
            if total >= limit:
                break
        grid[best] = 0
        return total

    n = search()
    return n, (found[0] if found else None)


def random_grid(rng: random.Random) -> list[int]:
    """A uniformly shuffled backtracking fill of the empty grid: a random valid complete grid."""
    _, grid = count_solutions([0] * 81, limit=1, rng=rng)
    assert grid is not None
    return grid


def is_valid_solution(grid: np.ndarray) -> np.ndarray:
    """Bool [N]: every row, column and box of each 9x9 grid ([N, 81] digits 1..9) holds each digit once."""
    g = np.asarray(grid).reshape(-1, 9, 9)
    boxes = g.reshape(-1, 3, 3, 3, 3).transpose(0, 1, 3, 2, 4).reshape(-1, 9, 9)
    ok = np.ones(len(g), dtype=bool)
    for units in (g, g.transpose(0, 2, 1), boxes):
        ok &= (np.sort(units, axis=2) == np.arange(1, 10)).all(axis=(1, 2))
    return ok


def augment(grids: np.ndarray, copies: int, seed: int) -> np.ndarray:
    """``copies`` random symmetry images of each grid ([N, 81] -> [N * copies, 81]), all valid sudokus."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.asarray(grids, dtype=np.int8).reshape(-1, 9, 9), copies, axis=0)
    n = len(g)
    relabel = np.concatenate([np.zeros((n, 1), int), 1 + np.argsort(rng.random((n, 9)), axis=1)], axis=1)
    g = np.take_along_axis(relabel, g.reshape(n, 81).astype(int), axis=1).reshape(n, 9, 9)

    def line_order() -> np.ndarray:
        bands = np.argsort(rng.random((n, 3)), axis=1)
        inner = np.argsort(rng.random((n, 3, 3)), axis=2)
        return (bands[:, :, None] * 3 + np.take_along_axis(inner, bands[:, :, None].repeat(3, 2), axis=1)).reshape(n, 9)

    rows, cols = line_order(), line_order()
    g = np.take_along_axis(g, rows[:, :, None].repeat(9, 2), axis=1)
    g = np.take_along_axis(g, cols[:, None, :].repeat(9, 1), axis=2)
    flip = rng.random(n) < 0.5
    g[flip] = g[flip].transpose(0, 2, 1)
    return g.reshape(n, 81).astype(np.int8)


def make_puzzle(solution: list[int], givens: int, rng: random.Random) -> list[int] | None:
    """Remove cells of ``solution`` in random order while the puzzle stays unique; None if ``givens`` is not reached."""
    puzzle = list(solution)
    order = list(range(81))
    rng.shuffle(order)
    filled = 81
    for i in order:
        if filled == givens:
            return puzzle
        keep, puzzle[i] = puzzle[i], 0
        if count_solutions(puzzle, limit=2)[0] != 1:
            puzzle[i] = keep
        else:
            filled -= 1
    return puzzle if filled == givens else None
