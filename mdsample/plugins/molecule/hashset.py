"""A compact, exact-enough membership set of strings: sorted 40-bit hashes, delta-encoded and lzma-compressed.

Why: novelty needs "is this canonical SMILES in MOSES train (1.58M molecules)?" offline, and the SMILES themselves
are ~60 MB. Each string becomes the top 40 bits of its BLAKE2b digest; the sorted hashes are stored as gaps, split
into byte planes (the high bytes of the gaps are nearly constant and compress well), then lzma'd.

False matches: a string that is not in the set collides with one of the N stored hashes with probability
about N / 2**40 (for N = 1.58M: 1.4e-6 per query), so a novel molecule is miscounted as known at that rate. Strings
that are in the set always match (no false negatives).
"""

from __future__ import annotations

import hashlib
import lzma
from collections.abc import Iterable
from pathlib import Path

import numpy as np

BITS = 40
_MAGIC = b"MDSH40\n"


def hash40(text: str) -> int:
    """Top 40 bits of BLAKE2b(text) as an int."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=5).digest(), "big")


def false_match_probability(n: int) -> float:
    """Chance that a string outside a set of ``n`` strings is reported as a member."""
    return n / 2.0**BITS


def build(strings: Iterable[str]) -> np.ndarray:
    """Sorted unique 40-bit hashes (uint64) of ``strings``."""
    return np.unique(np.fromiter((hash40(s) for s in strings), dtype=np.uint64))


def save(hashes: np.ndarray, path: Path) -> None:
    gaps = np.diff(hashes, prepend=np.uint64(0)).astype("<u8")
    width = max(1, int(gaps.max()).bit_length() + 7 >> 3) if len(gaps) else 1
    planes = gaps.view(np.uint8).reshape(-1, 8)[:, :width].T.copy()
    header = _MAGIC + len(hashes).to_bytes(8, "little") + bytes([width])
    path.write_bytes(header + lzma.compress(planes.tobytes(), preset=9 | lzma.PRESET_EXTREME))


def load(path: Path) -> np.ndarray:
    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC):
        raise ValueError(f"{path} is not a hash set file")
    pos = len(_MAGIC)
    n, width = int.from_bytes(raw[pos : pos + 8], "little"), raw[pos + 8]
    planes = np.frombuffer(lzma.decompress(raw[pos + 9 :]), dtype=np.uint8).reshape(width, n)
    full = np.zeros((n, 8), dtype=np.uint8)
    full[:, :width] = planes.T
    return np.cumsum(full.view("<u8").ravel(), dtype=np.uint64)


def contains(hashes: np.ndarray, strings: list[str]) -> np.ndarray:
    """Bool array: is each string (probably) in the set."""
    if not strings or not len(hashes):
        return np.zeros(len(strings), dtype=bool)
    query = np.array([hash40(s) for s in strings], dtype=np.uint64)
    idx = np.minimum(np.searchsorted(hashes, query), len(hashes) - 1)
    return hashes[idx] == query
