"""The metrics: exact values on hand-made sequences, NaN (never an exception) on empty or unusable input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from mdsample_dna import alphabet, data, metrics, motifs

TRAIN_ROWS = 256


def compute(sequences: list[str]) -> dict[str, float]:
    return metrics.compute(sequences, k=2, train_rows=TRAIN_ROWS, data_seed=0)


def test_constraint_rates_and_gc():
    background = "ACGT" * 16  # GC 0.5
    tata = "TATAAA" + background[6:]
    both = tata[:40] + "GAATTC" + tata[46:]
    at_rich = "A" * 64
    found = compute([background, tata, both, at_rich])
    assert found["tata_rate"] == 0.5 and found["site_rate"] == 0.25
    assert found["valid"] == (1 / 4 if motifs.is_valid(both) else 0.0) == 0.25
    assert found["gc_in_range"] == 0.75
    assert found["gc_mean"] == pytest.approx(np.mean([motifs.gc_content(s) for s in (background, tata, both, at_rich)]))
    assert found["unique"] == 1.0 and found["novel"] == 1.0


def test_duplicates_and_training_rows_lower_unique_and_novel():
    seen = sorted(data.train_strings(TRAIN_ROWS, 0))[:2]
    found = compute([seen[0], seen[0], seen[1], "ACGT" * 16])
    assert found["unique"] == 0.75 and found["novel"] == pytest.approx(1 / 3)


def test_kmer_spectrum_and_divergence():
    spectrum = metrics.kmer_spectrum(["ACGTN", "AC"], 2)
    assert spectrum.sum() == 4 and spectrum[1] == 2  # AC twice, CG, GT; the windows touching N are skipped
    same = np.array([3, 1, 0, 2])
    assert metrics.js_divergence(same, 2 * same) == 0.0
    assert metrics.js_divergence(np.array([1, 0]), np.array([0, 1])) == 1.0
    assert math.isnan(metrics.js_divergence(np.zeros(4), same))


def test_held_out_data_scores_like_held_out_data():
    held_out = data.generate(512, 99)
    found = compute(alphabet.decode_rows(torch.from_numpy(held_out).long()))
    assert found["valid"] == 1.0 and found["kmer2_js"] < 0.01


@pytest.mark.parametrize("sequences", [[], ["N" * 64], ["", "NNNN"]])
def test_empty_or_unusable_input_gives_nan_not_an_exception(sequences):
    found = compute(sequences)
    assert set(found) == {"valid", "tata_rate", "site_rate", "gc_in_range", "gc_mean", "unique", "novel", "kmer2_js"}
    if not sequences:
        assert all(math.isnan(v) for v in found.values())
    else:
        assert found["valid"] == 0.0 and math.isnan(found["gc_mean"]) and math.isnan(found["kmer2_js"])
