import math

import pytest

from mdsample.plugins.molecule import chem
from mdsample.plugins.molecule.metrics import basic, compute, fragments, similarity
from mdsample.plugins.molecule.metrics.fcd import frechet, stats

from .conftest import MOSES_LIKE, MOSES_TEST, MOSES_TRAIN


def test_validity_uniqueness_novelty_hand_checked():
    samples = ["CCO", "OCC", "c1ccccc1", "C1CC", "", "<pad>C", MOSES_TRAIN[0], "N#N"]
    m = compute(samples, with_fcd=False)
    # valid: CCO, OCC (= CCO), benzene, MOSES_TRAIN[0], N#N -> 5 of 8
    assert m["validity"] == pytest.approx(5 / 8)
    # 4 distinct canonical among 5 valid
    assert m["unique"] == pytest.approx(4 / 5)
    # of the 4 distinct, only MOSES_TRAIN[0] is in MOSES train
    assert m["novelty"] == pytest.approx(3 / 4)
    assert "unique@1000" not in m


def test_unique_at_k_uses_first_k_valid():
    canonical = ["C"] * 2 + [f"C{i}" for i in range(10)]
    assert basic.uniqueness(canonical, 3) == pytest.approx(2 / 3)
    assert basic.uniqueness(canonical) == pytest.approx(11 / 12)


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
    assert m["validity"] == 0.0 if samples else math.isnan(m["validity"])
    for key in ("unique", "novelty", "fcd", "intdiv", "snn", "frag", "scaf", "filters", "qed_mean", "sa_std"):
        assert math.isnan(m[key]), key


def test_single_molecule_is_defined():
    m = compute([MOSES_TEST[0]])
    assert m["validity"] == 1.0 and m["unique"] == 1.0 and m["intdiv"] == 0.0
    assert math.isnan(m["fcd"]) and m["qed_std"] == 0.0
    assert 0 < m["snn"] <= 1 and 0 < m["frag"] <= 1 and 0 < m["scaf"] <= 1


def test_intdiv_of_identical_molecules_is_zero_and_grows_with_diversity():
    fps_same = [chem.morgan(chem.to_mol(MOSES_TEST[1]))] * 5
    assert similarity.internal_diversity(fps_same) == pytest.approx(0.0)
    fps = [chem.morgan(chem.to_mol(s)) for s in MOSES_LIKE]
    assert 0.5 < similarity.internal_diversity(fps) < 1.0


def test_snn_of_a_reference_member_is_one():
    fps = [chem.morgan(chem.to_mol(s)) for s in MOSES_LIKE]
    assert similarity.nearest_neighbour_similarity(fps[:1], fps) == pytest.approx(1.0)


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


def test_fcd_to_moses_test_reference_is_finite_and_equals_the_direct_formula():
    from mdsample.plugins.molecule.metrics.fcd import fcd_to_test
    from mdsample.plugins.molecule.reference import fcd_stats

    a = [chem.canonical(s) for s in MOSES_LIKE]
    fast = fcd_to_test(a)
    assert math.isfinite(fast) and fast > 0
    assert fast == pytest.approx(frechet(*stats(a), *fcd_stats()), rel=1e-6)


def test_cosine_of_counts():
    from collections import Counter

    assert fragments.cosine(Counter(a=1, b=1), Counter(a=2, b=2)) == pytest.approx(1.0)
    assert fragments.cosine(Counter(a=1), Counter(b=1)) == 0.0
    assert math.isnan(fragments.cosine(Counter(), Counter(a=1)))


def test_scaffold_needs_two_rings():
    assert fragments.scaffold(chem.to_mol("Cc1ccccc1")) is None
    assert fragments.scaffold(chem.to_mol("Cc1ccc(-c2ccccc2)cc1")) == "c1ccc(-c2ccccc2)cc1"


def test_filters_reject_charges_bad_atoms_big_rings():
    from mdsample.plugins.molecule.metrics.filters import passes

    assert passes(chem.to_mol(MOSES_TEST[0]))
    for bad in ("CC[N+](C)(C)C", "CC[Si](C)C", "C1CCCCCCC1CC(=O)N"):
        assert not passes(chem.to_mol(bad)), bad


def test_metrics_for_64_molecules_take_seconds():
    import time

    samples = (MOSES_LIKE * 10)[:64]
    compute(samples)  # warm up ChemNet and the reference loaders
    start = time.perf_counter()
    compute(samples)
    assert time.perf_counter() - start < 10
