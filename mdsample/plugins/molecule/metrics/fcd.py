"""FCD (Preuer et al. 2018): Fréchet distance between ChemNet activations of the generated set and MOSES test.

The ``fcd`` package supplies ChemNet and the Fréchet formula; the test side is the shipped (mu, sigma) in
``reference/fcd_test_stats.npz``, so no reference molecules are needed at run time. Fewer than two valid
molecules give NaN (a covariance needs two samples). Small sets are biased upwards: FCD values are comparable only
between sets of equal size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _chemnet() -> torch.nn.Module:
    import fcd

    return fcd.load_ref_model()


def activations(smiles: list[str], batch_size: int = 128) -> np.ndarray:
    """ChemNet penultimate activations ``[N, 512]`` (float32, CPU) for canonical SMILES."""
    import fcd

    return fcd.get_predictions(_chemnet(), smiles, batch_size=batch_size, device="cpu")


def stats(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the ChemNet activations of ``smiles`` (float64)."""
    act = activations(smiles).astype(np.float64)
    return act.mean(axis=0), np.cov(act, rowvar=False)


def frechet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    from fcd import calculate_frechet_distance

    return float(calculate_frechet_distance(mu1=mu1, sigma1=sigma1, mu2=mu2, sigma2=sigma2))


def fcd_to(smiles: list[str], mu: np.ndarray, sigma: np.ndarray) -> float:
    """FCD of ``smiles`` against reference statistics; NaN for fewer than two molecules."""
    if len(smiles) < 2:
        return float("nan")
    return frechet(*stats(smiles), mu, sigma)
