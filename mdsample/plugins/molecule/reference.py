"""Loaders for the reference data shipped in ``reference/`` (built by ``build_reference``; see its README).

Each loader reads its file once per process. A missing file means a broken installation, reported as
MissingFileError naming the rebuild command.
"""

from __future__ import annotations

import gzip
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from mdsample.errors import MissingFileError, UnknownChoiceError
from mdsample.plugins.molecule import hashset
from mdsample.plugins.molecule.tokenizers import REPRESENTATIONS, Vocab

REFERENCE_DIR = Path(__file__).parent / "reference"


def _path(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.is_file():
        raise MissingFileError(
            f"reference file {path} is missing; rebuild it with `mdsample data --domain molecule --build-reference`"
        )
    return path


@cache
def vocab(representation: str) -> Vocab:
    if representation not in REPRESENTATIONS:
        raise UnknownChoiceError("representation", representation, REPRESENTATIONS)
    return Vocab.load(_path(f"vocab_{representation}.json"))


@lru_cache(maxsize=1)
def train_hashes() -> np.ndarray:
    return hashset.load(_path("train_hashes.bin"))


def in_train(canonical: list[str]) -> list[bool]:
    """Whether each canonical SMILES is (up to the hash set's false-match rate) in MOSES train."""
    return hashset.contains(train_hashes(), canonical).tolist()


@lru_cache(maxsize=1)
def fcd_stats() -> tuple[np.ndarray, np.ndarray]:
    with np.load(_path("fcd_test_stats.npz")) as data:
        return data["mu"].astype(np.float64), data["sigma"].astype(np.float64)


@lru_cache(maxsize=1)
def test_fingerprints() -> list:
    from mdsample.plugins.molecule import chem  # RDKit only when a metric needs it

    return chem.unpack_fps(np.load(_path("test_fps.npy")))


@cache
def counts(name: str) -> Counter[str]:
    """``test_fragments`` or ``test_scaffolds`` counts over MOSES test."""
    with gzip.open(_path(f"{name}.tsv.gz"), "rt") as f:
        return Counter({key: int(count) for count, key in (line.rstrip("\n").split("\t", 1) for line in f)})
