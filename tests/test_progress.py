"""The progress bars count what the canvas says: checked step by step against the masked positions themselves.

RichProgress (``mdsample`` runs) counts committed positions out of the masked ones; the study's SampleProgress
counts finished samples. An observer placed after the bar reads the canvas after every step and computes, on its
own, how many positions are committed and how many rows have no masked position left; the bars must agree at every
step and end complete.
"""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from rich.progress import Progress
from toy_domain import SuccessorDenoiser

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.callbacks import Callback, RichProgress
from mdsample.core.rules import BUILTIN_RULES
from mdsample.study.runner import SampleProgress

ROWS, LENGTH = 5, 12


class Oracle(Callback):
    """After each step: (the bar's count, the count recomputed from the canvas)."""

    def __init__(self, read_bar, count):
        self.read_bar, self.count, self.seen = read_bar, count, []

    def on_step(self, state, step, rows, committed):
        self.seen.append((self.read_bar(), self.count(state)))


def canvas(prompt_length: int = 2) -> MaskedState:
    prompt = torch.tensor([0, 1][:prompt_length])
    return MaskedState.blank(ROWS, LENGTH, SuccessorDenoiser().mask_id, prompt=prompt)


@pytest.mark.parametrize("rule", ["confidence", "klass", "threshold"])
def test_position_bar_follows_the_canvas(rule):
    state = canvas()
    total = int(state.masked.sum())
    assert total == ROWS * LENGTH  # the prompt is not counted
    bar = RichProgress("decoding")
    oracle = Oracle(lambda: int(bar._progress.tasks[0].completed), lambda s: total - int(s.masked.sum()))
    decode(SuccessorDenoiser(), state, BUILTIN_RULES[rule](), schedule=BlockSchedule(LENGTH // 2, LENGTH // 2),
           callbacks=[bar, oracle], generator=torch.Generator().manual_seed(0))
    assert oracle.seen and all(bar_count == truth for bar_count, truth in oracle.seen), oracle.seen
    task = bar._progress.tasks[0]
    assert task.total == total and task.completed == total and task.finished
    assert not bar._progress.live.is_started  # stopped (and, being transient, erased) at the end


def test_sample_bar_counts_finished_rows():
    state = canvas()
    progress = Progress(console=Console(file=None, quiet=True))
    task = progress.add_task("cell", total=ROWS)
    bar = SampleProgress(progress, task)
    oracle = Oracle(lambda: int(progress.tasks[0].completed),
                    lambda s: sum(all(t != s.mask_id for t in row[s.gen_start:].tolist()) for row in s.tokens))
    decode(SuccessorDenoiser(), state, BUILTIN_RULES["random"](), schedule=BlockSchedule(LENGTH, LENGTH),
           callbacks=[bar, oracle], generator=torch.Generator().manual_seed(1))
    assert all(bar_count == truth for bar_count, truth in oracle.seen), oracle.seen
    assert progress.tasks[0].completed == ROWS


def test_runs_show_the_bar_only_when_asked(toy_plugins, monkeypatch, tmp_path):
    from mdsample.api import sample

    made = []
    original = RichProgress.__init__

    def counting(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(RichProgress, "__init__", counting)
    sample("toy", "confidence", n=5, batch_size=2, progress=True, out=str(tmp_path / "a"))
    assert len(made) == 3 and all(bar._progress.tasks[0].finished for bar in made)  # one bar per batch
    sample("toy", "confidence", n=5, batch_size=2, progress=False, out=str(tmp_path / "b"))
    assert len(made) == 3
