"""Our metrics against MOSES's own: values molsets 0.3.1 computed on fixed files (see data/moses_expected.py).

The fixtures are raw output of the shipped samplers (valid and invalid strings) plus edge cases. Every MOSES-named
metric must agree to 1e-3, FCD to 1% (unique@k too where a file has fewer than k valid molecules: MOSES then
reports the fraction over those there are, and so do we).
"""

import json
from pathlib import Path

import pytest

from mdsample.plugins.molecule.metrics import compute

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "moses_expected.json").read_text())
NOT_COMPARED = {"logP", "SA", "QED", "weight"}  # MOSES's property Wasserstein distances: not computed here


@pytest.fixture(scope="module", params=["moses_smiles_samples.smi", "moses_selfies_samples.smi"])
def case(request):
    samples = (DATA / request.param).read_text().split("\n")[:-1]
    return EXPECTED[request.param], compute(samples)


def test_every_moses_metric_is_computed(case):
    expected, ours = case
    assert set(expected) - NOT_COMPARED <= set(ours)


def test_values_agree_with_molsets(case):
    expected, ours = case
    compared = 0
    for key, value in expected.items():
        if key in NOT_COMPARED:
            continue
        tolerance = 0.01 * abs(value) if key.startswith("FCD/") else 1e-3
        assert ours[key] == pytest.approx(value, abs=tolerance), key
        compared += 1
    assert compared == 15  # valid, unique@1000/10000, FCD/SNN/Frag/Scaf x Test/TestSF, IntDiv(2), Filters, Novelty

