"""Loaders for the reference data shipped in ``reference/`` (built by ``build_reference``; see its README).

Each loader reads its file once per process. A missing file means a broken installation, reported as
MissingFileError naming the rebuild command; a truncated or corrupted one is a one-line ConfigError naming it.
"""

from __future__ import annotations

import csv
import gzip
import lzma
import zipfile
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch

from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample.plugins.molecule import fpstore, hashset
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
    path = _path("train_hashes.bin")
    try:
        return hashset.load(path)
    except (ValueError, EOFError, lzma.LZMAError) as err:
        raise ConfigError(f"{path} is corrupted ({err}); reinstall mdsample") from None


def in_train(canonical: list[str]) -> list[bool]:
    """Whether each canonical SMILES is (up to the hash set's false-match rate) in MOSES train."""
    return hashset.contains(train_hashes(), canonical).tolist()


MOSES_SETS = ("test", "testsf")
"""The MOSES reference sets shipped whole: ``test`` (MOSES's "Test", 176,074 molecules) and ``testsf`` ("TestSF",
the 176,225 scaffold-split test molecules)."""


def _check_set(name: str) -> None:
    if name not in MOSES_SETS:
        raise UnknownChoiceError("MOSES reference set", name, MOSES_SETS)


@cache
def fcd_stats(name: str) -> tuple[np.ndarray, np.ndarray]:
    """MOSES's ChemNet mean and covariance of reference set ``name`` (float64)."""
    _check_set(name)
    path = _path(f"fcd_{name}.npz")
    try:
        with np.load(path) as data:
            return data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(f"{path} is corrupted ({err.__class__.__name__}); reinstall mdsample") from None


@cache
def fingerprints(name: str) -> torch.Tensor:
    """MOSES's Morgan fingerprints (r = 2, 1024 bits) of every molecule of set ``name``, as ``int8 [N, 1024]`` 0/1.

    Unpacked once per process (180 MB per set) because SNN multiplies against all of them for every batch."""
    _check_set(name)
    return torch.from_numpy(np.unpackbits(fpstore.load(_path(f"fps_{name}.bin")), axis=1).view(np.int8))


@cache
def counts(kind: str, name: str) -> Counter[str]:
    """MOSES's ``fragments`` or ``scaffolds`` counter of reference set ``name``."""
    _check_set(name)
    path = _path(f"{kind}_{name}.tsv.gz")
    try:
        with gzip.open(path, "rt") as f:
            return Counter({key: int(count) for count, key in (line.rstrip("\n").split("\t", 1) for line in f)})
    except (OSError, ValueError, EOFError) as err:
        raise ConfigError(f"{path} is corrupted ({err.__class__.__name__}); reinstall mdsample") from None


@cache
def filter_smarts() -> tuple[tuple[str, str], ...]:
    """MOSES's filter alerts ``(name, smarts)``: MCF, then PAINS, in MOSES's order."""
    path = _path("filters.csv.gz")
    try:
        with gzip.open(path, "rt", newline="") as f:
            return tuple((row["name"], row["smarts"]) for row in csv.DictReader(f))
    except (OSError, KeyError, EOFError, csv.Error) as err:
        raise ConfigError(f"{path} is corrupted ({err.__class__.__name__}); reinstall mdsample") from None
