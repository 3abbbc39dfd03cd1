"""IntDiv and SNN (MOSES): Tanimoto similarities of Morgan fingerprints (radius 2, 1024 bits).

- IntDiv (p = 1): 1 - mean Tanimoto over all ordered pairs of the valid samples, self-pairs included as MOSES does,
  so a set of copies of one molecule scores 0 and a single molecule scores 0. NaN when there is no valid sample.
- SNN: mean over valid samples of the Tanimoto similarity to the nearest reference molecule (the shipped MOSES test
  fingerprint sample). NaN when there is no valid sample.
"""

from __future__ import annotations

import numpy as np
from rdkit import DataStructs

NAN = float("nan")


def internal_diversity(fps: list) -> float:
    if not fps:
        return NAN
    total = sum(sum(DataStructs.BulkTanimotoSimilarity(fp, fps)) for fp in fps)
    return 1.0 - total / (len(fps) ** 2)


def nearest_neighbour_similarity(fps: list, reference: list) -> float:
    if not fps or not reference:
        return NAN
    return float(np.mean([max(DataStructs.BulkTanimotoSimilarity(fp, reference)) for fp in fps]))
