"""RDKit helpers every metric shares: parsing, canonical SMILES and Morgan fingerprints, with RDKit's logging off.

Validity follows MOSES: a string is a molecule when RDKit parses and sanitizes it and the result has at least one
atom. Canonical SMILES (RDKit's, isomeric) are the identity used for uniqueness and novelty.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator

RDLogger.DisableLog("rdApp.*")

FP_BITS = 1024
_MORGAN = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FP_BITS)


def to_mol(smiles: str | None) -> Chem.Mol | None:
    """The sanitized molecule of ``smiles``, or None when it does not parse, does not sanitize or is empty."""
    if not smiles or not isinstance(smiles, str):
        return None
    try:
        mol = Chem.MolFromSmiles(smiles)
    except Exception:  # RDKit raises on a few pathological inputs instead of returning None
        return None
    return mol if mol is not None and mol.GetNumAtoms() > 0 else None


def canonical(smiles: str | None) -> str | None:
    """RDKit canonical SMILES, or None for an invalid string."""
    mol = to_mol(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def morgan(mol: Chem.Mol) -> DataStructs.ExplicitBitVect:
    """Morgan fingerprint, radius 2, 1024 bits (the MOSES choice for IntDiv and SNN)."""
    return _MORGAN.GetFingerprint(mol)


def pack_fps(fps: list[DataStructs.ExplicitBitVect]) -> np.ndarray:
    """Fingerprints as a ``uint8 [N, FP_BITS/8]`` array (np.packbits order), for compact storage."""
    bits = np.zeros((len(fps), FP_BITS), dtype=np.uint8)
    for i, fp in enumerate(fps):
        DataStructs.ConvertToNumpyArray(fp, bits[i])
    return np.packbits(bits, axis=1)


def unpack_fps(packed: np.ndarray) -> list[DataStructs.ExplicitBitVect]:
    """Inverse of ``pack_fps``."""
    out = []
    for row in np.unpackbits(packed, axis=1):
        fp = DataStructs.ExplicitBitVect(FP_BITS)
        fp.SetBitsFromList(np.flatnonzero(row).tolist())
        out.append(fp)
    return out
