"""Callbacks decode() calls around its steps: a rich progress bar and a decode-trace recorder.

Callbacks observe; they never change the canvas. A callback that needs host values (counts for a progress bar)
pays for the device sync itself, so a decode without callbacks has none beyond the loop's one per step.
"""

from __future__ import annotations

import torch

from mdsample.core.state import MaskedState


class Callback:
    """Hooks of the iteration manager; every method is optional."""

    def on_start(self, state: MaskedState) -> None: ...

    def on_step(self, state: MaskedState, step: int, rows: torch.Tensor, committed: torch.Tensor) -> None:
        """After step ``step``: ``rows`` are the batch rows that took part, ``committed[B, L]`` what they committed."""

    def on_end(self, state: MaskedState) -> None: ...


class RichProgress(Callback):
    """A rich progress bar over the masked positions of the batch (committed / total)."""

    def __init__(self, description: str = "decoding"):
        self.description = description
        self._progress = None
        self._task = None

    def on_start(self, state: MaskedState) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=int(state.masked.sum()))

    def on_step(self, state: MaskedState, step: int, rows: torch.Tensor, committed: torch.Tensor) -> None:
        self._progress.update(self._task, advance=int(committed.sum()))

    def on_end(self, state: MaskedState) -> None:
        self._progress.stop()


class TraceRecorder(Callback):
    """Records, for the first ``rows`` rows, the canvas after every step (for decode-order pictures)."""

    def __init__(self, rows: int = 4):
        self.rows = rows
        self.frames: list[torch.Tensor] = []

    def on_step(self, state: MaskedState, step: int, rows: torch.Tensor, committed: torch.Tensor) -> None:
        self.frames.append(state.tokens[: self.rows].detach().cpu().clone())
