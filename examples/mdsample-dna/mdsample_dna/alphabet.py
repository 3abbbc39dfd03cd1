"""The token alphabet of the DNA domain: four bases, an unknown base and the mask token.

Why an explicit ``N``: the house model needs a padding id distinct from the mask (ModernBERT never trains the
padding embedding, so the mask cannot double as it). ``N`` is IUPAC's "any base": it never occurs in the training
data, and a sequence that contains one is simply not a valid sequence, so nothing downstream needs a special case.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mdsample.errors import ConfigError
from mdsample.files import read_json

SYMBOLS = ("N", "A", "C", "G", "T", "[MASK]")
BASES = "ACGT"
PAD_ID = SYMBOLS.index("N")
MASK_ID = SYMBOLS.index("[MASK]")
VOCAB_SIZE = len(SYMBOLS)
BASE_IDS = {base: SYMBOLS.index(base) for base in BASES}

# id -> character for decoding; a mask that survives (it should not) reads as the unknown base.
_CHARS = np.array([s if len(s) == 1 else "N" for s in SYMBOLS])


def encode(sequence: str) -> list[int]:
    """Token ids of a string over ``ACGTN`` (case-insensitive)."""
    try:
        return [SYMBOLS.index(c) for c in sequence.upper()]
    except ValueError:
        bad = sorted({c for c in sequence.upper() if c not in "ACGTN"})
        raise ConfigError(f"DNA sequence {sequence!r} has characters {''.join(bad)!r}; use only A, C, G, T, N") \
            from None


def decode_rows(tokens: torch.Tensor) -> list[str]:
    """One string per row of ``tokens[B, L]``."""
    return ["".join(row) for row in _CHARS[tokens.cpu().numpy()]]


def save(path: Path) -> None:
    """The alphabet beside a model's weights, so a model directory says which ids it was trained on."""
    path.write_text(json.dumps({"symbols": list(SYMBOLS)}) + "\n")


def check(path: Path) -> None:
    """ConfigError unless the model directory's alphabet is this one."""
    if not path.is_file():
        raise ConfigError(f"{path.parent} is not a DNA house model: it has no {path.name}")
    content = read_json(path, "alphabet")
    found = content.get("symbols") if isinstance(content, dict) else None
    if found != list(SYMBOLS):
        raise ConfigError(f"{path.parent} was trained on the alphabet {found}, not {list(SYMBOLS)}")
