"""FCD (Preuer et al. 2018): Fréchet distance between ChemNet activations of the generated set and a MOSES set.

The ``fcd`` package supplies ChemNet (SMILES padded to 350 steps); its activations equal those of ``fcd_torch``,
which MOSES uses (checked to 0.0 on 305 molecules, bracket atoms and charges included). The Fréchet distance is
computed here (``frechet``, ``fcd_to``). The reference side is MOSES's own (mu, sigma) of the whole Test or TestSF
set (``reference/fcd_<set>.npz``, from the molsets wheel), so no reference molecules are needed at run time. Fewer
than two valid molecules give NaN (a covariance needs two samples). Small sets are biased upwards: FCD values are
comparable only between sets of equal size (MOSES reports them for 30,000 samples; the tables here use 10,000).
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import torch


@lru_cache(maxsize=1)
def _chemnet() -> torch.nn.Module:
    import fcd

    return fcd.load_ref_model().to("cuda" if torch.cuda.is_available() else "cpu").eval()


def activations(smiles: list[str], batch_size: int = 512) -> np.ndarray:
    """ChemNet penultimate activations ``[N, 512]`` (float32) for canonical SMILES, on the GPU when there is one.

    The batching loop is ours rather than ``fcd.get_predictions``, which calls ``np.row_stack`` (gone in NumPy 2.4+).
    """
    from fcd.utils import SmilesDataset

    if not smiles:
        return np.zeros((0, 512), dtype=np.float32)
    model = _chemnet()
    device = next(model.parameters()).device
    dataset = SmilesDataset(smiles)
    out = []
    with torch.no_grad():
        for start in range(0, len(smiles), batch_size):
            batch = torch.as_tensor(np.stack([dataset[i] for i in range(start, min(start + batch_size, len(smiles)))]))
            out.append(model(batch.transpose(1, 2).float().to(device)).cpu().numpy().astype(np.float32))
    return np.concatenate(out)


def stats(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the ChemNet activations of ``smiles`` (float64)."""
    act = activations(smiles).astype(np.float64)
    return act.mean(axis=0), np.cov(act, rowvar=False)


def frechet(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2), the trace term via symmetric eigendecompositions.

    tr((S1 S2)^1/2) = tr((R S2 R)^1/2) with R = S1^1/2, and R S2 R is symmetric PSD, so two ``eigh`` of 512 x 512
    replace scipy's general ``sqrtm`` (which took ~10 s on a busy 2-core machine and gives the same value).
    """
    root1 = _sqrt_psd(sigma1)
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    trace_sqrt = np.sqrt(np.clip(inner, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


@cache
def _reference(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from mdsample.plugins.molecule.reference import fcd_stats

    mu, sigma = fcd_stats(name)
    return mu, sigma, _sqrt_psd(sigma)


def fcd_to_all(smiles: list[str], names: tuple[str, ...]) -> dict[str, float]:
    """FCD of canonical ``smiles`` against each MOSES reference set in ``names`` (test, testsf); NaN for fewer than
    two molecules. One ChemNet pass serves every set.

    Same value as ``frechet(*stats(smiles), mu, sigma)``, computed in the n x n space of the samples: with
    R = sigma^1/2 (cached) and B = centred activations @ R / sqrt(n - 1), the nonzero eigenvalues of
    R S_gen R = B^T B are those of B B^T, so a batch of 64 needs a 64 x 64 eigendecomposition, not 512 x 512.
    """
    if len(smiles) < 2:
        return {name: float("nan") for name in names}
    act = activations(smiles).astype(np.float64)
    mu, centred = act.mean(axis=0), act - act.mean(axis=0)
    out = {}
    for name in names:
        mu_ref, sigma_ref, root_ref = _reference(name)
        b = centred @ root_ref / np.sqrt(len(act) - 1)
        gram = b @ b.T if len(act) <= b.shape[1] else b.T @ b
        trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None)).sum()
        trace_gen = (centred * centred).sum() / (len(act) - 1)
        diff = mu - mu_ref
        out[name] = float(diff @ diff + trace_gen + np.trace(sigma_ref) - 2.0 * trace_sqrt)
    return out
