"""RDKit helpers every metric shares: parsing, canonical SMILES and Morgan fingerprints, with RDKit's logging off.

Validity follows MOSES (``moses.utils.get_mol``): a string is a molecule when it is non-empty, RDKit parses it and
``SanitizeMol`` accepts the result. Canonical SMILES (RDKit's, isomeric) are the identity used for uniqueness and
novelty, and MOSES scores the canonical SMILES of the valid samples, so the metrics parse those again (``mols``).
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator

RDLogger.DisableLog("rdApp.*")

FP_BITS = 1024
_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FP_BITS)


def to_mol(smiles: str | None) -> Chem.Mol | None:
    """The sanitized molecule of ``smiles``, or None when it is empty, does not parse or does not sanitize."""
    if not smiles or not isinstance(smiles, str):
        return None
    try:
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            Chem.SanitizeMol(mol)
    except Exception:  # RDKit raises on a few pathological inputs instead of returning None
        return None
    return mol


def canonical(smiles: str | None) -> str | None:
    """RDKit canonical SMILES, or None for an invalid string."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def fingerprint_bits(mols: list[Chem.Mol]) -> np.ndarray:
    """Morgan fingerprints (radius 2, 1024 bits: MOSES's choice for IntDiv and SNN) as ``uint8 [N, 1024]`` of 0/1."""
    if not mols:
        return np.zeros((0, FP_BITS), dtype=np.uint8)
    return np.stack([_MORGAN.GetFingerprintAsNumPy(m) for m in mols]).astype(np.uint8)
