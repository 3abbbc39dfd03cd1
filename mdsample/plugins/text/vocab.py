"""The house text models' character vocabulary: one id per character the reasoning tasks write.

Why characters: the house tasks (sudoku, arithmetic) are strings of digits and a few operators, so a character
vocabulary keeps the model tiny, makes every slot of a template exactly one character, and needs no tokenizer
download. The vocabulary is fixed in code (and checked against the ``vocab.json`` saved beside each model), so a
checkpoint and its canvases always agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mdsample.errors import ConfigError
from mdsample.files import read_json

PAD, BOS, MASK = "<pad>", "<bos>", "<mask>"
CHARS = "0123456789+-*=;:#."


class CharVocab:
    """``<pad>`` = 0, ``<bos>`` = 1, ``<mask>`` = 2, then one id per character of ``CHARS``."""

    def __init__(self) -> None:
        self.symbols = [PAD, BOS, MASK, *CHARS]
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.pad_id, self.bos_id, self.mask_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        bad = sorted({c for c in text if c not in self.index})
        if bad:
            raise ConfigError(f"characters {''.join(bad)!r} are outside the house vocabulary {CHARS!r}")
        return [self.index[c] for c in text]

    def decode(self, ids: torch.Tensor | list[int], *, mask: str = "_") -> str:
        """Characters of ``ids``; padding and BOS vanish, a still-masked slot shows as ``mask``."""
        out = []
        for i in torch.as_tensor(ids).tolist():
            if i == self.mask_id:
                out.append(mask)
            elif i > self.mask_id:
                out.append(self.symbols[i])
        return "".join(out)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"symbols": self.symbols}) + "\n")

    def check(self, path: Path) -> None:
        """A model directory's vocab.json must match this vocabulary exactly."""
        if path.is_file() and _symbols(read_json(path, "vocabulary")) != self.symbols:
            raise ConfigError(f"{path} holds another vocabulary than the house text vocabulary; retrain the model")


def _symbols(vocab: object) -> object:
    return vocab.get("symbols") if isinstance(vocab, dict) else None
