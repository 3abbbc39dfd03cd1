"""A chain of modular operations: a task where the reasoning matters.

``07+5*3-8*7+2+4-1*9=`` starts at 07 and applies the operations left to right, modulo 100 (no precedence): each
operation is ``+d``, ``-d`` or ``*d`` with a single digit d in 1..9. The gold trace writes every intermediate value,
two digits each, and the answer is the last one::

    07+5*3-8*7+2+4-1*9=  ->  12;36;28;96;98;02;01;09  #  09

Why this task: every trace step is a lookup a small model learns exactly (one two-digit value, one operation), so
with the trace written first the answer is easy; without it the model must compose ``ops`` operations inside one
forward pass, which a house model cannot (answer-first decoding, ``decode.answer_first``, measures this). That is
the gap the arithmetic task lacks (its model answers correctly before writing any reasoning), and it is what
early exit, MED and posterior fine-tuning need to show their effects. The default is 8 operations: with 6 the
model trained with traces still answered 49% of held-out chains right when forced to answer first, with 8 it
answers 5% (reasoning_suite.py on an H200; BENCHMARKS.md), so 8 is where the trace is what carries the answer.

Layout (tasks/template.py): prompt ``2 + 2 * ops + 1`` characters (the start value is zero-padded, so prompts never
need padding), ``3 * ops - 1`` reasoning slots, ``#``, 2 answer slots. Train and test problems both have exactly
``ops`` operations; a problem belongs to the test split iff a fixed 64-bit hash of its code (start value and
operations as one integer) says so, about one in ten, so the splits never share a problem. Generation is vectorised
(numpy), so the million training rows of ``mdsample train`` take a second.
"""

from __future__ import annotations

import re

import numpy as np

from mdsample.errors import ConfigError
from mdsample.plugins.text.tasks.base import Problem
from mdsample.plugins.text.tasks.template import DELIMITER, TemplateTask
from mdsample.plugins.text.vocab import CharVocab

OPS = "+-*"
MODULUS = 100
CHUNK = 4096
EXAMPLE_OPS = "+5*3-8*7+2+4-1*9+3*2-4*5"  # 12 operations, the most a chain has
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier: a fixed hash that spreads consecutive codes


def apply(values: np.ndarray, op: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """One operation on arrays: op 0 adds, 1 subtracts, 2 multiplies by ``digit``, all modulo 100."""
    return np.where(op == 0, values + digit, np.where(op == 1, values - digit, values * digit)) % MODULUS


def run_chain(start: np.ndarray, op: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """Every intermediate value ``[N, ops]`` of the chains ``start[N]``, ``op[N, ops]``, ``digit[N, ops]``."""
    values, v = [], start.astype(np.int64)
    for i in range(op.shape[1]):
        v = apply(v, op[:, i], digit[:, i])
        values.append(v)
    return np.stack(values, axis=1)


def is_test(start: np.ndarray, op: np.ndarray, digit: np.ndarray) -> np.ndarray:
    """The fixed split: the problem's code (start, then each operation as one of 27 symbols) hashed; 1 in 10 is test."""
    code = start.astype(np.uint64)
    for i in range(op.shape[1]):
        code = code * np.uint64(27) + (op[:, i] * 9 + digit[:, i] - 1).astype(np.uint64)
    return ((code * _GOLDEN) >> np.uint64(40)) % np.uint64(10) == 0


class ChainTask(TemplateTask):
    name = "chain"
    description = "a start value and ops +d/-d/*d mod 100, left to right; trace: every intermediate value"

    answer_length = 2

    def __init__(self, ops: int = 8):
        if not 2 <= ops <= 12:
            raise ConfigError(f"chain ops must be 2..12 (domain.ops), got {ops}")
        self.ops = ops
        self.prompt_width = 2 + 2 * ops + 1
        self.reasoning_length = 3 * ops - 1

    def _draw(self, n: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``n`` chains of the split, drawn in fixed chunks: the first k of n are the k problems of a shorter list."""
        if split not in ("train", "test"):
            raise ConfigError(f"split must be train or test, got {split!r}")
        rng = np.random.default_rng([seed, 0 if split == "test" else 1, self.ops])
        starts, ops, digits, have = [], [], [], 0
        while have < n:
            s = rng.integers(0, MODULUS, CHUNK)
            o = rng.integers(0, len(OPS), (CHUNK, self.ops))
            d = rng.integers(1, 10, (CHUNK, self.ops))
            keep = is_test(s, o, d) == (split == "test")
            starts.append(s[keep])
            ops.append(o[keep])
            digits.append(d[keep])
            have += int(keep.sum())
        return np.concatenate(starts)[:n], np.concatenate(ops)[:n], np.concatenate(digits)[:n]

    @staticmethod
    def _problem(start: int, op: list[int], digit: list[int], values: list[int]) -> Problem:
        prompt = f"{start:02d}" + "".join(OPS[o] + str(d) for o, d in zip(op, digit, strict=True)) + "="
        return Problem(prompt, f"{values[-1]:02d}", ";".join(f"{v:02d}" for v in values))

    def problems(self, n: int, seed: int, split: str = "test") -> list[Problem]:
        s, o, d = self._draw(n, seed, split)
        values = run_chain(s, o, d)
        return [self._problem(*args) for args in zip(s.tolist(), o.tolist(), d.tolist(), values.tolist(), strict=True)]

    def parse_prompt(self, text: str) -> Problem:
        m = re.fullmatch(r"\s*(\d{1,2})((?:[-+*][1-9])+)\s*=?\s*", text)
        if not m or len(m[2]) != 2 * self.ops:
            example = "07" + EXAMPLE_OPS[: 2 * self.ops]
            raise ConfigError(f"a chain prompt looks like {example}: a start value 0..99 then exactly {self.ops} "
                              "operations +d, -d or *d with d in 1..9 (domain.ops)")
        start, op, digit = int(m[1]), [OPS.index(c) for c in m[2][::2]], [int(c) for c in m[2][1::2]]
        values = run_chain(np.array([start]), np.array([op]), np.array([digit]))[0]
        return self._problem(start, op, digit, values.tolist())

    def steps_right(self, problem: Problem, reasoning: str) -> float:
        """Fraction of the ``ops`` values of a trace (``12;36;...``) that follow from the value written before them
        (the start value for the first): how much of a sampled trace is sound, wherever its errors are."""
        start, pairs = int(problem.prompt[:2]), problem.prompt[2:-1]
        values = reasoning.split(";")[: self.ops]
        prev, right = start, 0
        for i, written in enumerate(values):
            want = apply(np.array(prev), np.array(OPS.index(pairs[2 * i])), np.array(int(pairs[2 * i + 1])))
            ok = len(written) == 2 and written.isdigit()
            right += ok and int(written) == int(want)
            prev = int(written) if ok else int(want)
        return right / self.ops

    def training_rows(self, n: int, seed: int, vocab: CharVocab) -> np.ndarray:
        """The rows of ``row_ids`` for ``problems(n, seed, "train")``, built as arrays (no per-problem strings)."""
        s, o, d = self._draw(n, seed, "train")
        values = run_chain(s, o, d)
        digit_ids = np.array(vocab.encode("0123456789"))
        op_ids = np.array(vocab.encode(OPS))
        sep, eq, delim = (vocab.encode(c)[0] for c in (";", "=", DELIMITER))
        steps = np.stack([op_ids[o], digit_ids[d]], axis=-1).reshape(n, -1)
        separated = np.concatenate([_two(values, digit_ids), np.full((n, self.ops, 1), sep)], axis=-1)
        trace = separated.reshape(n, -1)[:, :-1]
        rows = [_two(s, digit_ids), steps, np.full((n, 1), eq), trace, np.full((n, 1), delim),
                _two(values[:, -1], digit_ids)]
        return np.concatenate(rows, axis=1).astype(np.int64)


def _two(values: np.ndarray, digit_ids: np.ndarray) -> np.ndarray:
    """Token ids ``[..., 2]`` of zero-padded two-digit ``values``."""
    return digit_ids[np.stack([values // 10, values % 10], axis=-1)]
