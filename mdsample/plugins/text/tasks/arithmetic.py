"""Multi-digit multiplication with a reasoning template: ``123*45=`` then the partial products, then the answer.

Layout (reasoning-as-infilling, core/infill.py; shared by the template tasks, tasks/template.py):
``[prompt, left-padded] [reasoning slots] # [answer slots]``. The gold trace multiplies by each digit of the second
factor, least significant first, then adds the shifted partial products::

    123*45=  ->  123*5=615;123*4=492;615+4920=5535  #  5535

so the answer is only certain once the trace is written: answer-slot entropy falls as reasoning fills in, which
is what early exit reads. Training mixes every size up to the task's (``a_digits`` x ``b_digits``); test problems
are of exactly that size. A problem belongs to the test split iff a fixed hash of (a, b) says so, so the splits
never share a problem.
"""

from __future__ import annotations

import re

import numpy as np

from mdsample.errors import ConfigError
from mdsample.plugins.text.tasks.base import Problem
from mdsample.plugins.text.tasks.template import DELIMITER, TemplateTask

__all__ = ["DELIMITER", "ArithmeticTask", "is_test_pair", "trace"]

CHUNK = 4096


def trace(a: int, b: int) -> str:
    """The gold reasoning for a * b: one partial product per digit of b, then the running sums."""
    digits = [int(d) for d in reversed(str(b))]
    steps = [f"{a}*{d}={a * d}" for d in digits]
    total = a * digits[0]
    for place, d in enumerate(digits[1:], start=1):
        shifted = a * d * 10**place
        steps.append(f"{total}+{shifted}={total + shifted}")
        total += shifted
    return ";".join(steps)


def is_test_pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The fixed split: about one pair in ten is held out."""
    return (a * 7919 + b * 104729) % 10 == 0


class ArithmeticTask(TemplateTask):
    name = "arithmetic"
    description = "a*b with a reasoning trace (partial products, sums) then the answer; metric: exact answer"

    def __init__(self, a_digits: int = 3, b_digits: int = 2):
        if not (1 <= a_digits <= 4 and 1 <= b_digits <= 3):
            raise ConfigError(f"arithmetic digits must be 1..4 x 1..3, got {a_digits}x{b_digits}")
        self.a_digits, self.b_digits = a_digits, b_digits
        a_max, b_max = 10**a_digits - 1, 10**b_digits - 1
        self.prompt_width = a_digits + b_digits + 2
        self.reasoning_length = max(len(trace(a_max, b)) for b in (b_max, 10 ** (b_digits - 1)))
        self.answer_length = a_digits + b_digits

    def _pairs(self, n: int, rng: np.random.Generator, split: str, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        """Draws in fixed chunks, so the first k of n problems are the k problems (batches can slice one list)."""
        out_a, out_b = [], []
        while sum(len(x) for x in out_a) < n:
            ad = np.full(CHUNK, self.a_digits) if exact else rng.integers(1, self.a_digits + 1, CHUNK)
            bd = np.full(CHUNK, self.b_digits) if exact else rng.integers(1, self.b_digits + 1, CHUNK)
            a = rng.integers(10 ** (ad - 1), 10**ad)
            b = rng.integers(10 ** (bd - 1), 10**bd)
            keep = is_test_pair(a, b) == (split == "test")
            out_a.append(a[keep])
            out_b.append(b[keep])
        return np.concatenate(out_a)[:n], np.concatenate(out_b)[:n]

    def problems(self, n: int, seed: int, split: str = "test") -> list[Problem]:
        rng = np.random.default_rng([seed, 0 if split == "test" else 1])
        a, b = self._pairs(n, rng, split, exact=split == "test")
        return [Problem(f"{x}*{y}=", str(x * y), trace(x, y)) for x, y in zip(a.tolist(), b.tolist(), strict=True)]

    def parse_prompt(self, text: str) -> Problem:
        m = re.fullmatch(r"\s*(\d+)\s*\*\s*(\d+)\s*=?\s*", text)
        if not m or len(m[1]) > self.a_digits or len(m[2]) > self.b_digits:
            raise ConfigError(f"an arithmetic prompt looks like 123*45: at most {self.a_digits} digits times at most "
                              f"{self.b_digits} (domain.a_digits / domain.b_digits)")
        a, b = int(m[1]), int(m[2])
        return Problem(f"{a}*{b}=", str(a * b), trace(a, b))
