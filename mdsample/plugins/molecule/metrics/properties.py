"""Property summaries of the valid molecules: QED, SA score, Crippen logP, molecular weight (mean and std).

MOSES compares these distributions to the test set with a Wasserstein distance; here the means and (population)
standard deviations are reported, which is what a sampler comparison reads at a glance. SA comes from RDKit's
Contrib ``SA_Score/sascorer.py`` (shipped inside the rdkit wheel); if it is missing, the ``sa_*`` keys are NaN.
NaN for empty sets; std is 0 for a single molecule.
"""

from __future__ import annotations

import importlib
import sys
from functools import lru_cache

import numpy as np
from rdkit import Chem, RDConfig
from rdkit.Chem import QED, Crippen, Descriptors


@lru_cache(maxsize=1)
def _sa_scorer():
    path = f"{RDConfig.RDContribDir}/SA_Score"
    if path not in sys.path:
        sys.path.append(path)
    try:
        return importlib.import_module("sascorer").calculateScore
    except ImportError:
        return None


def _sa(mol: Chem.Mol) -> float:
    scorer = _sa_scorer()
    return float("nan") if scorer is None else scorer(mol)


PROPERTIES = {"qed": QED.qed, "sa": _sa, "logp": Crippen.MolLogP, "weight": Descriptors.MolWt}


def summaries(mols: list[Chem.Mol]) -> dict[str, float]:
    out = {}
    for name, fn in PROPERTIES.items():
        values = np.array([fn(m) for m in mols], dtype=np.float64)
        out[f"{name}_mean"] = float(values.mean()) if len(values) else float("nan")
        out[f"{name}_std"] = float(values.std()) if len(values) else float("nan")
    return out
