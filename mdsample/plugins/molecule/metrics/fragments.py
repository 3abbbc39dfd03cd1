"""Frag and Scaf (MOSES): cosine similarity of BRICS-fragment counts and of Bemis-Murcko scaffold counts.

Fragments are the pieces ``FragmentOnBRICSBonds`` cuts a molecule into (dummy atoms mark the cut bonds); scaffolds
are Murcko frameworks with at least two rings (MOSES drops smaller ones, which are mostly single benzene rings and
would dominate the counts). Both compare the generated set's counts with the MOSES test set's, as vectors indexed by
the union of keys: 1 means the same proportions, 0 nothing in common. Empty count vectors give NaN.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

MIN_SCAFFOLD_RINGS = 2


def fragments(mol: Chem.Mol) -> list[str]:
    """SMILES of the BRICS fragments of ``mol`` (with ``[n*]`` dummies at the cut points)."""
    return Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(mol)).split(".")


def scaffold(mol: Chem.Mol) -> str | None:
    """Murcko scaffold SMILES, None when it has fewer than MIN_SCAFFOLD_RINGS rings."""
    try:
        core = MurckoScaffold.GetScaffoldForMol(mol)
    except (ValueError, RuntimeError):
        return None
    if core.GetRingInfo().NumRings() < MIN_SCAFFOLD_RINGS:
        return None
    smiles = Chem.MolToSmiles(core)
    return smiles or None


def fragment_counts(mols: Iterable[Chem.Mol]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for mol in mols:
        counts.update(fragments(mol))
    return counts


def scaffold_counts(mols: Iterable[Chem.Mol]) -> Counter[str]:
    return Counter(s for s in map(scaffold, mols) if s is not None)


def cosine(gen: Counter[str], ref: Counter[str]) -> float:
    """Cosine similarity of two count vectors (MOSES's ``cos_similarity``)."""
    ref_norm = math.sqrt(sum(v * v for v in ref.values()))
    gen_norm = math.sqrt(sum(v * v for v in gen.values()))
    if gen_norm == 0 or ref_norm == 0:
        return float("nan")
    return sum(v * ref.get(k, 0) for k, v in gen.items()) / (gen_norm * ref_norm)
