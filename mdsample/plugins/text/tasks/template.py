"""The reasoning-as-infilling layout shared by the house template tasks (arithmetic, chain).

Every such task lays a problem out as ``[prompt, left-padded] [reasoning slots] # [answer slots]`` (core/infill.py):
the prompt and the delimiter are frozen, the model fills the rest. The layout, the training rows and the reading of
a completion are the same for every task; a subclass only says how wide the three regions are (``prompt_width``,
``reasoning_length``, ``answer_length``, set in its ``__init__``), how it draws problems and what its gold trace is.
Keeping it in one place is what lets posterior sampling, early exit, answer-first decoding and partial-trace scoring
serve every template task alike.
"""

from __future__ import annotations

import numpy as np
import torch

from mdsample.core.infill import infill_canvas
from mdsample.errors import ConfigError
from mdsample.plugins.text.tasks.base import Problem, Task, TaskCanvas
from mdsample.plugins.text.vocab import CharVocab

DELIMITER = "#"


class TemplateTask(Task):
    """A house task with answer slots; subclasses set ``prompt_width``, ``reasoning_length``, ``answer_length``."""

    prompt_width: int
    reasoning_length: int
    answer_length: int

    @property
    def length(self) -> int:
        return self.prompt_width + self.reasoning_length + len(DELIMITER) + self.answer_length

    @property
    def frozen_prefix(self) -> int:
        return self.prompt_width

    def reasoning_slots(self) -> slice:
        return slice(self.prompt_width, self.prompt_width + self.reasoning_length)

    def canvas(self, problems: list[Problem], vocab: CharVocab, device: torch.device,
               answers: list[str] | None = None) -> TaskCanvas:
        """The template for ``problems``; ``answers`` fills and freezes the answer slots (posterior sampling)."""
        given = None if answers is None else [self.answer_ids(a, vocab) for a in answers]
        c = infill_canvas([vocab.encode(p.prompt) for p in problems], reasoning_length=self.reasoning_length,
                          delimiter=vocab.encode(DELIMITER), answer_length=self.answer_length, answers=given,
                          mask_id=vocab.mask_id, pad_id=vocab.pad_id, prompt_width=self.prompt_width, device=device)
        return TaskCanvas(c.state, c.answer)

    def answer_ids(self, answer: str, vocab: CharVocab) -> list[int]:
        """The answer slots' content for ``answer``: its characters, then padding."""
        ids = vocab.encode(answer)
        if len(ids) > self.answer_length:
            raise ConfigError(f"answer {answer!r} does not fit {self.answer_length} answer slots")
        return ids + [vocab.pad_id] * (self.answer_length - len(ids))

    def row_ids(self, problem: Problem, vocab: CharVocab, reasoning: str | None = None) -> list[int]:
        """One complete canvas: the layout of ``canvas`` with the trace (default: the gold one) and the answer."""
        prompt = vocab.encode(problem.prompt)
        steps = vocab.encode(problem.reasoning if reasoning is None else reasoning)[: self.reasoning_length]
        return ([vocab.pad_id] * (self.prompt_width - len(prompt)) + prompt
                + steps + [vocab.pad_id] * (self.reasoning_length - len(steps))
                + vocab.encode(DELIMITER) + self.answer_ids(problem.answer, vocab))

    def training_rows(self, n: int, seed: int, vocab: CharVocab) -> np.ndarray:
        return np.array([self.row_ids(p, vocab) for p in self.problems(n, seed, split="train")], dtype=np.int64)

    def read(self, text: str) -> tuple[str, str]:
        reasoning, _, answer = text.rpartition(DELIMITER)
        return reasoning, answer

    def correct(self, problem: Problem, answer: str) -> bool:
        return answer == problem.answer
