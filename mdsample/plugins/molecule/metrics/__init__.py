"""The molecule metrics of one batch of samples, MOSES definitions (each module documents its own).

``compute`` takes the decoded strings (SMILES, or raw text for ill-formed rows) and returns a flat dict of floats.
Every key is always present (``unique@1000`` / ``unique@10000`` only with that many valid samples), with NaN where
a value is undefined (no samples, no valid ones, FCD with fewer than two), so tables line up across runs.
"""

from __future__ import annotations

from rdkit import Chem

from mdsample.plugins.molecule import chem, reference
from mdsample.plugins.molecule.metrics import basic, filters, fragments, properties, similarity
from mdsample.plugins.molecule.metrics.fcd import fcd_to_test

UNIQUE_AT = (1000, 10000)


def compute(samples: list[str | None], with_fcd: bool = True) -> dict[str, float]:
    mols = [chem.to_mol(s) for s in samples]
    valid = [m for m in mols if m is not None]
    canonical = [Chem.MolToSmiles(m) for m in valid]
    out = {
        "validity": basic.validity(len(samples), len(valid)),
        "unique": basic.uniqueness(canonical),
    }
    out |= {f"unique@{k}": basic.uniqueness(canonical, k) for k in UNIQUE_AT if len(canonical) >= k}
    out["novelty"] = basic.novelty(canonical, reference.in_train)
    if with_fcd:
        out["fcd"] = fcd_to_test(canonical)
    fps = [chem.morgan(m) for m in valid]
    out["intdiv"] = similarity.internal_diversity(fps)
    out["snn"] = similarity.nearest_neighbour_similarity(fps, reference.test_fingerprints())
    out["frag"] = fragments.cosine(fragments.fragment_counts(valid), reference.counts("test_fragments"))
    out["scaf"] = fragments.cosine(fragments.scaffold_counts(valid), reference.counts("test_scaffolds"))
    out["filters"] = filters.fraction_passing(valid)
    out["filters_mcf"] = float(bool(filters.mcf_patterns()))
    return out | properties.summaries(valid)
