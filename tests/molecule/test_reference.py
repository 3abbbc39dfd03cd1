"""The shipped reference data: present, small, consistent with the documented canvas lengths and coverage."""

import json
import re

import pytest

import mdsample.plugins.molecule.domain as domain_module
from mdsample.plugins.molecule import hashset
from mdsample.plugins.molecule.reference import REFERENCE_DIR, train_hashes, vocab
from mdsample.plugins.molecule.vocab_build import canvas_length, coverage_of


def test_molecule_package_data_stays_within_56_mb():
    from mdsample.plugins.molecule.domain import WEIGHTS_DIR

    files = [p for p in REFERENCE_DIR.iterdir() if p.is_file()]
    assert len(files) >= 14
    weights = list(WEIGHTS_DIR.glob("*/model.safetensors"))
    assert len(weights) == 2 and all(p.stat().st_size <= 16_000_000 for p in weights)
    assert sum(p.stat().st_size for p in files + list(WEIGHTS_DIR.glob("*/*"))) <= 56_000_000


@pytest.mark.parametrize("name,size", [("test", 176_074), ("testsf", 176_225)])
def test_moses_reference_sets_are_whole(name, size):
    from mdsample.plugins.molecule.reference import counts, fcd_stats, fingerprints

    assert fingerprints(name).shape == (size, 1024)
    mu, sigma = fcd_stats(name)
    assert mu.shape == (512,) and sigma.shape == (512, 512)
    assert len(counts("fragments", name)) > 10_000 and len(counts("scaffolds", name)) > 40_000


@pytest.mark.parametrize("rep", ["smiles", "selfies"])
def test_documented_canvas_length_and_coverage(rep):
    hist = {int(k): v for k, v in json.loads((REFERENCE_DIR / "lengths.json").read_text())[rep]["histogram"].items()}
    length = vocab(rep).length
    assert length == canvas_length(hist)
    doc = re.search(rf"- {rep}:\s+L = (\d+), covering ([\d.]+)% of MOSES train", domain_module.__doc__)
    assert doc is not None
    assert int(doc.group(1)) == length
    assert float(doc.group(2)) == pytest.approx(100 * coverage_of(hist, length), abs=0.005)


def test_train_hash_set_size_and_false_match_rate():
    hashes = train_hashes()
    assert 1_500_000 < len(hashes) < 1_600_000
    assert (hashes[1:] > hashes[:-1]).all()
    assert hashset.false_match_probability(len(hashes)) < 2e-6
