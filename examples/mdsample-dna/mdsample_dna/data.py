"""The synthetic corpus: promoter-like sequences with planted motifs, generated on the fly, deterministically.

Why synthetic: the example must train and test offline in seconds, and a planted ground truth makes the metrics
mean something (a model that learned the data produces TATA boxes, restriction sites and the right GC content; one
that did not, does not). Each row has a background of independent bases whose GC probability is drawn per row,
a TATA box planted near the 5' end, one restriction site planted in the second half, and is kept only if its GC
fraction lies inside the band. Everything is vectorised numpy, so 32k rows take a fraction of a second.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mdsample_dna import alphabet
from mdsample_dna.motifs import GC_RANGE, LENGTH, SITE_STARTS, SITES, TATA_BOX, TATA_STARTS

VAL_ROWS = 2048
_GC = np.array([alphabet.BASE_IDS["G"], alphabet.BASE_IDS["C"]], dtype=np.uint8)
_AT = np.array([alphabet.BASE_IDS["A"], alphabet.BASE_IDS["T"]], dtype=np.uint8)
_TATA = np.array(alphabet.encode(TATA_BOX), dtype=np.uint8)
_SITES = np.array([alphabet.encode(s) for s in SITES.values()], dtype=np.uint8)


def _plant(rows: np.ndarray, motifs: np.ndarray, starts: np.ndarray) -> None:
    """Write ``motifs[i]`` (or one motif for all rows) into ``rows[i]`` at ``starts[i]``, in place."""
    cols = starts[:, None] + np.arange(motifs.shape[-1])
    rows[np.arange(len(rows))[:, None], cols] = motifs


def _candidates(m: int, rng: np.random.Generator) -> np.ndarray:
    p_gc = rng.uniform(0.3, 0.7, size=(m, 1))
    is_gc = rng.random((m, LENGTH)) < p_gc
    pick = rng.integers(0, 2, size=(m, LENGTH))
    rows = np.where(is_gc, _GC[pick], _AT[pick]).astype(np.uint8)
    _plant(rows, np.broadcast_to(_TATA, (m, len(_TATA))), rng.integers(TATA_STARTS[0], TATA_STARTS[1] + 1, m))
    _plant(rows, _SITES[rng.integers(0, len(_SITES), m)], rng.integers(SITE_STARTS[0], SITE_STARTS[1] + 1, m))
    return rows


def generate(n: int, seed: int) -> np.ndarray:
    """``n`` rows of token ids (uint8 ``[n, LENGTH]``); the same ``(n, seed)`` always gives the same rows."""
    rng = np.random.default_rng(seed)
    kept: list[np.ndarray] = []
    have = 0
    while have < n:
        rows = _candidates(2 * (n - have) + 16, rng)
        gc = np.isin(rows, _GC).mean(axis=1)
        rows = rows[(gc >= GC_RANGE[0]) & (gc <= GC_RANGE[1])]
        kept.append(rows)
        have += len(rows)
    return np.concatenate(kept)[:n]


def split_seed(data_seed: int, split: str) -> int:
    """Distinct random streams for the train and validation splits of one ``data_seed``."""
    return 2 * data_seed + (split == "val")


@lru_cache(maxsize=4)
def train_strings(rows: int, data_seed: int) -> frozenset[str]:
    """The training sequences as strings, for novelty."""
    ids = generate(rows, split_seed(data_seed, "train"))
    return frozenset("".join(r) for r in np.array(alphabet.SYMBOLS)[ids])


@lru_cache(maxsize=4)
def val_rows(data_seed: int) -> np.ndarray:
    """The held-out rows the k-mer spectrum of samples is compared with."""
    return generate(VAL_ROWS, split_seed(data_seed, "val"))
