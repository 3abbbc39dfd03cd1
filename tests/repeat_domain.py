"""A tiny trainable domain for the training tests: BOS then a random 3-token motif repeated (registered as "repeat").

It has a corpus and nothing else: the training tests run ``mdsample train`` on it, in this process or in a
subprocess that is killed mid-run, with a model small enough to train in seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mdsample.domain import Domain, DomainOptions, TrainData
from mdsample.hookspecs import hookimpl

VOCAB, MASK, PAD, BOS = 12, 11, 0, 1


class RepeatDomain(Domain):
    """BOS followed by a random 3-token motif repeated five times (tests only)."""

    name = "repeat"
    description = "BOS followed by a random 3-token motif repeated five times (tests only)"

    def train_data(self, options: DomainOptions) -> TrainData:
        gen = torch.Generator().manual_seed(0)
        motifs = torch.randint(2, 10, (600, 3), generator=gen)
        rows = torch.cat([torch.full((600, 1), BOS), motifs.repeat(1, 5)], dim=1)
        return TrainData(rows[:500], rows[500:], VOCAB, MASK, PAD, frozen_prefix=1)

    def save_assets(self, options: DomainOptions, model_dir: Path) -> None:
        (model_dir / "vocab.txt").write_text("\n".join(map(str, range(VOCAB))))

    def load_denoiser(self, options, device):
        raise NotImplementedError

    def initial_state(self, denoiser, options, n, device, offset=0):
        raise NotImplementedError

    def decode(self, tokens, initial):
        raise NotImplementedError

    def save(self, objects, run_dir, initial):
        raise NotImplementedError

    def metrics(self, objects, options, initial):
        raise NotImplementedError


@hookimpl
def register_domains(register):
    register(RepeatDomain())
