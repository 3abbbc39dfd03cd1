"""The training corpus: MOSES train (and test, as validation) encoded as canvas rows, cached as .npy.

Why cache: converting 1.58M molecules to SELFIES takes minutes even on a process pool, and a training run on a GPU
machine should start at once. The cache lives next to the prepared data (``encoded/``), keyed by representation,
split, canvas length and a digest of the vocabulary, so a changed vocabulary never reuses stale rows. Molecules
that do not fit the canvas or hold a token outside the vocabulary are dropped; ``encode_split`` reports how many.

Call it as ``MoleculeDomain().train_data(MoleculeDomain.Options(representation="selfies"))``; rows are ``uint8``
(every vocabulary has < 256 tokens, 1.58M x 56 bytes instead of 8x that), which the trainer casts to long.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from mdsample.plugins.molecule.canvas import encode_smiles
from mdsample.plugins.molecule.data import data_dir, load_split, prepared_file
from mdsample.plugins.molecule.tokenizers import Vocab


def cache_path(vocab: Vocab, split: str, dest: str | Path | None = None) -> Path:
    digest = hashlib.sha256("\n".join(vocab.tokens).encode()).hexdigest()[:12]
    return data_dir(dest) / "encoded" / f"{vocab.representation}_{split}_L{vocab.length}_{digest}.npy"


def encode_split(split: str, vocab: Vocab, dest: str | Path | None = None, processes: int | None = None) -> np.ndarray:
    """Canvas rows ``uint8 [N, L]`` of one MOSES split, from the cache when present."""
    prepared_file(f"{split}.csv.gz", dest)  # raises DataNotPreparedError with the command to run
    path = cache_path(vocab, split, dest)
    if path.is_file():
        return np.load(path)
    rows, dropped = encode_smiles(load_split(split, dest), vocab, processes or os.cpu_count() or 1)
    print(f"encoded MOSES {split} as {vocab.representation}: {len(rows)} rows, {dropped} dropped", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, rows)
    tmp.replace(path)
    return rows
