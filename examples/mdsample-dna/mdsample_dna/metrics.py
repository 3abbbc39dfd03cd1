"""Metrics of a batch of generated sequences: constraint rates, GC content, uniqueness, novelty, k-mer spectrum.

Why these: validity and the per-constraint rates say whether the model learned the planted structure (motifs and
GC band); uniqueness and novelty say whether it does so without collapsing or copying its training rows; the
Jensen-Shannon divergence between the k-mer spectra of the samples and of held-out rows says whether the background
composition is right too (0: same spectrum, 1: disjoint). Every value is a float, NaN when undefined (an empty batch,
no scorable k-mer), never an exception.
"""

from __future__ import annotations

import math

import numpy as np

from mdsample_dna import data, motifs

_BASE_INDEX = np.full(256, -1, dtype=np.int64)
_BASE_INDEX[[ord(b) for b in "ACGT"]] = np.arange(4)


def kmer_spectrum(sequences: list[str] | np.ndarray, k: int) -> np.ndarray:
    """Counts of every k-mer (``4**k`` bins, lexicographic over ACGT) over windows made of bases only."""
    if isinstance(sequences, np.ndarray):
        codes = sequences.astype(np.int64) - 1  # token ids 1..4 are A, C, G, T
        codes[(codes < 0) | (codes > 3)] = -1
    else:
        if not sequences:
            return np.zeros(4**k, dtype=np.int64)
        width = max(map(len, sequences))
        raw = np.frombuffer("".join(s.ljust(width, "N") for s in sequences).encode("ascii"), dtype=np.uint8)
        codes = _BASE_INDEX[raw].reshape(len(sequences), width)
    if codes.shape[1] < k:
        return np.zeros(4**k, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k, axis=1)
    ok = (windows >= 0).all(axis=-1)
    index = (windows * (4 ** np.arange(k - 1, -1, -1))).sum(axis=-1)
    return np.bincount(index[ok], minlength=4**k)


def js_divergence(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of two count vectors; NaN if either is all zeros."""
    if p_counts.sum() == 0 or q_counts.sum() == 0:
        return math.nan
    p, q = p_counts / p_counts.sum(), q_counts / q_counts.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def compute(sequences: list[str], k: int, train_rows: int, data_seed: int) -> dict[str, float]:
    """Every metric of the domain on ``sequences`` (see the module docstring)."""
    names = ("valid", "tata_rate", "site_rate", "gc_in_range", "gc_mean", "unique", "novel", f"kmer{k}_js")
    if not sequences:
        return dict.fromkeys(names, math.nan)
    n = len(sequences)
    gc = [motifs.gc_content(s) for s in sequences]
    finite = [g for g in gc if not math.isnan(g)]
    distinct = set(sequences)
    seen = data.train_strings(train_rows, data_seed)
    values = (
        sum(map(motifs.is_valid, sequences)) / n,
        sum(map(motifs.has_tata, sequences)) / n,
        sum(map(motifs.has_site, sequences)) / n,
        sum(map(motifs.gc_ok, sequences)) / n,
        sum(finite) / len(finite) if finite else math.nan,
        len(distinct) / n,
        len(distinct - seen) / len(distinct),
        js_divergence(kmer_spectrum(sequences, k), kmer_spectrum(data.val_rows(data_seed), k)),
    )
    return dict(zip(names, values, strict=True))
