"""Fraction of valid molecules passing MOSES-style medicinal-chemistry filters.

A molecule passes when all its atoms are among C, N, O, S, F, Cl, Br, H; no atom carries a formal charge; no ring
has 8 or more atoms; and it matches none of the PAINS alerts (RDKit's FilterCatalog PAINS A/B/C, the same WEHI
PAINS set MOSES uses) nor, when the MOSES data is prepared, the MCF SMARTS of ``mcf.csv`` (matched on the
hydrogen-explicit molecule, as MOSES does). Without prepared data the MCF part is skipped and ``filters_mcf`` is 0.
NaN when there is no valid molecule.
"""

from __future__ import annotations

import csv
from functools import lru_cache

from rdkit import Chem
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

from mdsample.plugins.molecule.data import has_file, prepared_file

ALLOWED_ATOMS = frozenset({"C", "N", "S", "O", "F", "Cl", "Br", "H"})
MAX_RING = 7


@lru_cache(maxsize=1)
def _pains() -> FilterCatalog:
    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
    return FilterCatalog(params)


@lru_cache(maxsize=1)
def mcf_patterns() -> tuple[Chem.Mol, ...]:
    """The MCF SMARTS from prepared data, or () when the data is not prepared."""
    if not has_file("mcf.csv"):
        return ()
    with open(prepared_file("mcf.csv")) as f:
        return tuple(p for p in (Chem.MolFromSmarts(row["smarts"]) for row in csv.DictReader(f)) if p is not None)


def passes(mol: Chem.Mol) -> bool:
    if any(a.GetFormalCharge() != 0 or a.GetSymbol() not in ALLOWED_ATOMS for a in mol.GetAtoms()):
        return False
    if any(len(ring) > MAX_RING for ring in mol.GetRingInfo().AtomRings()):
        return False
    if _pains().HasMatch(mol):
        return False
    with_h = Chem.AddHs(mol)
    return not any(with_h.HasSubstructMatch(p) for p in mcf_patterns())


def fraction_passing(mols: list[Chem.Mol]) -> float:
    return sum(map(passes, mols)) / len(mols) if mols else float("nan")
