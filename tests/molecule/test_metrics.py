import math

import numpy as np
import pytest
import torch

from mdsample.plugins.molecule import chem
from mdsample.plugins.molecule.metrics import basic, compute, fragments, similarity
from mdsample.plugins.molecule.metrics.fcd import frechet, stats

from .conftest import MOSES_LIKE, MOSES_TEST, MOSES_TRAIN


def test_validity_uniqueness_novelty_hand_checked():
    samples = ["CCO", "OCC", "c1ccccc1", "C1CC", "", "<pad>C", MOSES_TRAIN[0], "N#N"]
    m = compute(samples, with_fcd=False)
    # valid: CCO, OCC (= CCO), benzene, MOSES_TRAIN[0], N#N -> 5 of 8
    assert m["valid"] == pytest.approx(5 / 8)
    # 4 distinct canonical among 5 valid
    assert m["unique"] == pytest.approx(4 / 5)
    # of the 4 distinct, only MOSES_TRAIN[0] is in MOSES train
    assert m["Novelty"] == pytest.approx(3 / 4)
    assert m["unique@1000"] == m["unique"] and m["unique@1000_n"] == 5  # MOSES: over the 5 there are


def test_unique_at_k_uses_first_k_valid():
    canonical = ["C"] * 2 + [f"C{i}" for i in range(10)]
    assert basic.uniqueness(canonical, 3) == pytest.approx(2 / 3)
    assert basic.uniqueness(canonical) == pytest.approx(11 / 12)
    assert basic.uniqueness(canonical, 13) == basic.uniqueness(canonical)


def test_novelty_against_a_given_set():
    assert basic.novelty(["A", "B", "B", "C"], lambda xs: [x in {"A"} for x in xs]) == pytest.approx(2 / 3)


def test_moses_train_is_stored_rdkit_canonical():
    """The novelty hash set hashes train SMILES as stored; that is right only if RDKit reproduces them."""
    assert [chem.canonical(s) for s in MOSES_TRAIN] == MOSES_TRAIN


def test_in_train_membership_exact_on_known_molecules():
    from mdsample.plugins.molecule.reference import in_train

    assert in_train([chem.canonical(s) for s in MOSES_TRAIN]) == [True, True]
    assert in_train(["CCO", "C1CCCCCCCCCCC1"]) == [False, False]


@pytest.mark.parametrize("samples", [[], ["xx", "", "<mask>"], [None]])
def test_empty_and_all_invalid_are_defined(samples):
    m = compute(samples)
    assert m["valid"] == 0.0 if samples else math.isnan(m["valid"])
    keys = ("unique", "Novelty", "FCD/Test", "FCD/TestSF", "IntDiv", "IntDiv2", "SNN/Test", "Frag/Test", "Scaf/Test",
            "SNN/TestSF", "Filters", "qed_mean", "sa_std")
    for key in keys:
        assert math.isnan(m[key]), key


def test_single_molecule_is_defined():
    m = compute([MOSES_TEST[0]])
    assert m["valid"] == 1.0 and m["unique"] == 1.0 and m["IntDiv"] == 0.0 and m["IntDiv2"] == 0.0
    assert math.isnan(m["FCD/Test"]) and m["qed_std"] == 0.0
    # a member of MOSES test is its own nearest neighbour there
    assert m["SNN/Test"] == pytest.approx(1.0) and 0 < m["Frag/Test"] <= 1 and 0 < m["Scaf/Test"] <= 1


def _tanimoto_oracle(a, b):
    """Tanimoto through RDKit's own bit vectors, independent of the matrix products in ``similarity``."""
    from rdkit import DataStructs

    def vec(bits):
        fp = DataStructs.ExplicitBitVect(len(bits))
        fp.SetBitsFromList([int(i) for i in bits.nonzero()[0]])
        return fp

    return [[DataStructs.TanimotoSimilarity(vec(x), vec(y)) for y in b] for x in a]


def test_intdiv_matches_pairwise_tanimoto_and_is_zero_for_copies():
    bits = chem.fingerprint_bits([chem.to_mol(s) for s in MOSES_LIKE])
    t = np.array(_tanimoto_oracle(bits, bits))
    assert similarity.internal_diversity(bits) == pytest.approx(1 - t.mean(), abs=1e-6)
    assert similarity.internal_diversity(bits, p=2) == pytest.approx(1 - np.sqrt((t**2).mean(1)).mean(), abs=1e-6)
    assert similarity.internal_diversity(np.repeat(bits[:1], 5, axis=0)) == pytest.approx(0.0)


def test_snn_matches_max_tanimoto_over_a_reference():
    bits = chem.fingerprint_bits([chem.to_mol(s) for s in MOSES_LIKE])
    gen, ref = bits[:3], bits[3:]
    expected = np.array(_tanimoto_oracle(gen, ref)).max(1).mean()
    stock = torch.from_numpy(ref).to(torch.int8)
    assert similarity.nearest_neighbour_similarity(gen, stock) == pytest.approx(expected, abs=1e-6)
    empty = np.zeros((1, 1024), dtype=np.uint8)
    assert similarity.nearest_neighbour_similarity(empty, torch.zeros(1, 1024, dtype=torch.int8)) == 1.0  # 0/0 -> 1


def test_fcd_of_a_set_against_itself_is_zero_and_symmetric():
    a = [chem.canonical(s) for s in MOSES_LIKE]
    b = [chem.canonical(s) for s in ("CCO", "c1ccccc1O", "CC(=O)O", "CCN(CC)CC", "O=C1CCCCC1", "Clc1ccccc1")]
    sa, sb = stats(a), stats(b)
    assert frechet(*sa, *sa) == pytest.approx(0.0, abs=1e-3)
    assert frechet(*sa, *sb) == pytest.approx(frechet(*sb, *sa), rel=1e-6)
    assert frechet(*sa, *sb) > 1.0


def test_frechet_matches_the_fcd_package():
    from fcd import calculate_frechet_distance

    a = [chem.canonical(s) for s in MOSES_LIKE]
    (mu1, s1), (mu2, s2) = stats(a[:4]), stats(a[3:])
    theirs = calculate_frechet_distance(mu1=mu1, sigma1=s1, mu2=mu2, sigma2=s2)
    assert frechet(mu1, s1, mu2, s2) == pytest.approx(theirs, rel=1e-4)


@pytest.mark.parametrize("name", ["test", "testsf"])
def test_fcd_to_a_moses_reference_equals_the_direct_formula(name):
    from mdsample.plugins.molecule.metrics.fcd import fcd_to_all
    from mdsample.plugins.molecule.reference import fcd_stats

    a = [chem.canonical(s) for s in MOSES_LIKE]
    fast = fcd_to_all(a, (name,))[name]
    assert math.isfinite(fast) and fast > 0
    assert fast == pytest.approx(frechet(*stats(a), *fcd_stats(name)), rel=1e-6)


def test_cosine_of_counts():
    from collections import Counter

    assert fragments.cosine(Counter(a=1, b=1), Counter(a=2, b=2)) == pytest.approx(1.0)
    assert fragments.cosine(Counter(a=1), Counter(b=1)) == 0.0
    assert math.isnan(fragments.cosine(Counter(), Counter(a=1)))


def test_scaffold_needs_two_rings():
    assert fragments.scaffold(chem.to_mol("Cc1ccccc1")) is None
    assert fragments.scaffold(chem.to_mol("Cc1ccc(-c2ccccc2)cc1")) == "c1ccc(-c2ccccc2)cc1"


def test_filters_reject_charges_bad_atoms_big_rings_and_alerts():
    from mdsample.plugins.molecule.metrics.filters import alerts, passes

    assert len(alerts()) == 22 + 480  # MOSES's MCF and PAINS tables, every SMARTS parsed
    assert passes(chem.to_mol(MOSES_TEST[0]))
    for bad in ("CC[N+](C)(C)C", "CC[Si](C)C", "C1CCCCCCC1CC(=O)N", "CCI", "C=CC#N"):
        assert not passes(chem.to_mol(bad)), bad


def test_metrics_for_64_molecules_take_seconds():
    import time

    samples = (MOSES_LIKE * 10)[:64]
    compute(samples)  # warm up ChemNet and the reference loaders
    start = time.perf_counter()
    compute(samples)
    assert time.perf_counter() - start < 10
