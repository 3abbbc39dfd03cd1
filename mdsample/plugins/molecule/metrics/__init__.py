"""The molecule metrics of one batch of samples: MOSES's metrics under MOSES's names, plus a few of our own.

``compute`` takes the decoded strings (SMILES, or raw text for ill-formed rows) and returns a flat dict of floats,
every key always present, NaN where a value is undefined (no valid molecule, FCD with fewer than two), so tables
line up across runs. ``unique@k`` with fewer than k valid molecules is MOSES's value over those there are;
``unique@k_n`` says how many that was. Keys with MOSES's names compute what molsets 0.3.1's
``get_all_metrics`` computes, against MOSES's whole reference sets (``/Test`` and ``/TestSF``; see
``reference/README.md``), as tests/molecule/test_moses_parity.py checks on fixed files:

    valid, unique@1000, unique@10000, FCD/Test, SNN/Test, Frag/Test, Scaf/Test, FCD/TestSF, SNN/TestSF,
    Frag/TestSF, Scaf/TestSF, IntDiv, IntDiv2, Filters, Novelty

As in MOSES, everything after validity is computed on the canonical SMILES of the valid samples, duplicates kept.
Our own keys: ``unique`` (distinct fraction of all valid samples) and the property summaries ``qed_mean`` ...
``weight_std`` (MOSES instead reports Wasserstein distances of these properties to Test, which are not computed).
"""

from __future__ import annotations

from mdsample.plugins.molecule import chem, reference
from mdsample.plugins.molecule.metrics import basic, filters, fragments, properties, similarity
from mdsample.plugins.molecule.metrics.fcd import fcd_to_all

UNIQUE_AT = (1000, 10000)
SETS = {"test": "Test", "testsf": "TestSF"}
"""Our reference-set names -> MOSES's metric suffixes."""


def compute(samples: list[str | None], with_fcd: bool = True, sets: tuple[str, ...] = tuple(SETS),
            with_filters: bool = True) -> dict[str, float]:
    """All metrics of ``samples``; ``with_fcd``, ``sets`` and ``with_filters`` leave out the costly ones (ChemNet,
    a reference set, the 502 filter SMARTS), whose keys are then absent, for sweeps that only rank settings."""
    canonical = [c for c in map(chem.canonical, samples) if c is not None]
    mols = [m for m in map(chem.to_mol, canonical) if m is not None]
    out = {"valid": basic.validity(len(samples), len(canonical))}
    for k in UNIQUE_AT:
        out[f"unique@{k}"] = basic.uniqueness(canonical, k)
        out[f"unique@{k}_n"] = float(min(k, len(canonical)))
    out["unique"] = basic.uniqueness(canonical)
    fcd = fcd_to_all(canonical, sets) if with_fcd else {}
    bits = chem.fingerprint_bits(mols)
    frag, scaf = fragments.fragment_counts(mols), fragments.scaffold_counts(mols)
    for name in sets:
        suffix = SETS[name]
        if with_fcd:
            out[f"FCD/{suffix}"] = fcd[name]
        out[f"SNN/{suffix}"] = similarity.nearest_neighbour_similarity(bits, reference.fingerprints(name))
        out[f"Frag/{suffix}"] = fragments.cosine(frag, reference.counts("fragments", name))
        out[f"Scaf/{suffix}"] = fragments.cosine(scaf, reference.counts("scaffolds", name))
    out["IntDiv"] = similarity.internal_diversity(bits, p=1)
    out["IntDiv2"] = similarity.internal_diversity(bits, p=2)
    if with_filters:
        out["Filters"] = filters.fraction_passing(mols)
    out["Novelty"] = basic.novelty(canonical, reference.in_train)
    return out | properties.summaries(mols)
