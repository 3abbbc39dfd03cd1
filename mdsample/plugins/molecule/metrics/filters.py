"""Filters (MOSES): the fraction of valid molecules passing MOSES's medicinal-chemistry filters.

A molecule passes (``moses.metrics.utils.mol_passes_filters``) when no ring has 8 or more atoms; no atom carries a
formal charge; every atom is one of C, N, S, O, F, Cl, Br, H; the hydrogen-explicit molecule matches none of
MOSES's own alerts (its MCF table, then its WEHI PAINS table, shipped as ``reference/filters.csv.gz``); and its
non-isomeric SMILES is non-empty and parses again. NaN when there is no valid molecule.
"""

from __future__ import annotations

from functools import lru_cache

from rdkit import Chem

from mdsample.plugins.molecule.reference import filter_smarts

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MIN_BAD_RING = 8


@lru_cache(maxsize=1)
def alerts() -> tuple[Chem.Mol, ...]:
    return tuple(Chem.MolFromSmarts(smarts) for _, smarts in filter_smarts())


def passes(mol: Chem.Mol) -> bool:
    if any(len(ring) >= MIN_BAD_RING for ring in mol.GetRingInfo().AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 or a.GetSymbol() not in ALLOWED_ATOMS for a in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(alert) for alert in alerts()):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smiles) and Chem.MolFromSmiles(smiles) is not None


def fraction_passing(mols: list[Chem.Mol]) -> float:
    return sum(map(passes, mols)) / len(mols) if mols else float("nan")
