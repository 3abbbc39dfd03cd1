"""The synthetic corpus: deterministic, every row satisfies the constraints it is meant to teach."""

from __future__ import annotations

import numpy as np
import torch
from mdsample_dna import alphabet, data, motifs


def test_rows_are_deterministic_and_distinct_per_split():
    a, b = data.generate(500, 3), data.generate(500, 3)
    assert a.shape == (500, motifs.LENGTH) and np.array_equal(a, b)
    train, val = data.split_seed(0, "train"), data.split_seed(0, "val")
    assert train != val and not np.array_equal(data.generate(50, train), data.generate(50, val))


def test_every_row_is_valid_and_uses_bases_only():
    rows = data.generate(2000, 0)
    assert set(np.unique(rows)) <= set(alphabet.BASE_IDS.values())
    sequences = alphabet.decode_rows(torch.from_numpy(rows).long())
    assert all(map(motifs.is_valid, sequences))
    tata_at = [s.index(motifs.TATA_BOX) for s in sequences]
    assert min(tata_at) <= motifs.TATA_STARTS[1]  # planted near the 5' end (the background may add more)
    assert 0.4 <= np.mean([motifs.gc_content(s) for s in sequences]) <= 0.6


def test_random_sequences_are_rarely_valid():
    """The constraints are informative: uniform random DNA almost never meets them, so validity measures learning."""
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), motifs.LENGTH)) for _ in range(2000)]
    assert sum(map(motifs.is_valid, sequences)) / 2000 < 0.01
