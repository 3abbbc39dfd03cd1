"""Building the vocabularies and choosing canvas lengths from MOSES train (no RDKit needed, so it runs anywhere).

The vocabulary is the special tokens followed by every token seen in train, sorted, so it is deterministic. The
canvas length is the smallest multiple of 8 that holds BOS + tokens + EOS for at least ``COVERAGE`` of train:
multiples of 8 suit GPU kernels, and the last 0.1% are the longest outliers, which would cost every row padding.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from multiprocessing import get_context
from pathlib import Path

from mdsample.plugins.molecule.tokenizers import (
    REPRESENTATIONS,
    SPECIALS,
    Vocab,
    smiles_to_selfies,
    split_selfies,
    split_smiles,
)

COVERAGE = 0.999


def parallel_map(fn: Callable, items: list, processes: int, chunksize: int = 4096) -> list:
    """``map(fn, items)`` over a process pool (fork), order kept; plain map for one process."""
    if processes <= 1:
        return list(map(fn, items))
    with get_context("fork").Pool(processes) as pool:
        return pool.map(fn, items, chunksize=chunksize)


def tokens_of_selfies(smiles: str) -> list[str] | None:
    text = smiles_to_selfies(smiles)
    return None if text is None else split_selfies(text)


TOKENIZE = {"smiles": split_smiles, "selfies": tokens_of_selfies}


def canvas_length(histogram: dict[int, int], coverage: float = COVERAGE) -> int:
    """Smallest multiple of 8 such that BOS + tokens + EOS fits for at least ``coverage`` of the molecules."""
    total, length = sum(histogram.values()), 8
    while sum(c for n, c in histogram.items() if n + 2 <= length) < coverage * total:
        length += 8
    return length


def coverage_of(histogram: dict[int, int], length: int) -> float:
    """Fraction of molecules whose BOS + tokens + EOS fits in ``length``."""
    return sum(c for n, c in histogram.items() if n + 2 <= length) / sum(histogram.values())


def build_vocab(train: list[str], out: Path, processes: int, representations=REPRESENTATIONS) -> None:
    """Write ``vocab_<rep>.json`` for each representation and merge its histogram into ``lengths.json``."""
    lengths_file = out / "lengths.json"
    lengths = json.loads(lengths_file.read_text()) if lengths_file.is_file() else {}
    for rep in representations:
        seqs = parallel_map(TOKENIZE[rep], train, processes)
        kept = [s for s in seqs if s is not None]
        hist = Counter(len(s) for s in kept)
        tokens = sorted({t for s in kept for t in s})
        Vocab(rep, SPECIALS + tuple(tokens), canvas_length(hist)).save(out / f"vocab_{rep}.json")
        lengths[rep] = {"unencodable": len(seqs) - len(kept), "histogram": {str(k): hist[k] for k in sorted(hist)}}
    lengths_file.write_text(json.dumps(lengths, indent=1))
