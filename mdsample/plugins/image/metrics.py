"""Image metrics: Fréchet distance (torchmetrics' FrechetInceptionDistance), conditional accuracy, an IS-style score.

Features for the Fréchet distance come from one of two extractors:

- ``glyph`` (default): the project's glyph classifier (classifier.py), reported as ``fd_glyph``. It works offline
  and in CI; the reference set is the held-out fonts rendered at evaluation time, restricted to the classes the
  samples were drawn for (class-matched, so ``--class A`` is compared with real A's).
- ``inception``: the standard FID Inception-v3 features of torch-fidelity, reported as ``fid``. It needs the
  ``torch-fidelity`` package and its weights file on disk; without them the run stops with a message saying what to
  install or download, instead of trying the network.

``accuracy`` is the share of samples the classifier assigns to the class they were drawn for; ``is_glyph`` is the
Inception Score formula over the classifier's class probabilities, exp(E_x KL(p(y|x) || p(y))): high when each
sample is unambiguous and the samples cover many classes.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch

from mdsample.errors import MissingFileError, UnknownChoiceError
from mdsample.plugins.image.classifier import GlyphClassifier, GlyphFeatures, predict_proba

FEATURES = ("glyph", "inception")
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
"""The file torch-fidelity downloads into ``$TORCH_HOME/hub/checkpoints`` on first use."""


def frechet_distance(metric: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, batch: int = 512) -> float:
    """Fréchet distance that ``metric`` (a fresh FrechetInceptionDistance with ``normalize=True``) gives between
    two image batches ``[N, C, H, W]`` in [0, 1]; NaN when either side has fewer than two images."""
    if len(real) < 2 or len(fake) < 2:
        return float("nan")
    for chunk in real.split(batch):
        metric.update(chunk, real=True)
    for chunk in fake.split(batch):
        metric.update(chunk, real=False)
    return float(metric.compute())


def glyph_fid(classifier: GlyphClassifier) -> torch.nn.Module:
    """FrechetInceptionDistance over the glyph classifier's pooled features (FD-glyph)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=GlyphFeatures(classifier), normalize=True)


def inception_weights(path: str | None = None) -> Path:
    """The Inception weights file (``path``, else torch-fidelity's cache); MissingFileError says how to get it."""
    if importlib.util.find_spec("torch_fidelity") is None:
        raise MissingFileError(
            "domain.fid_features=inception needs the torch-fidelity package (pip install torch-fidelity) and its "
            "Inception weights; or use domain.fid_features=glyph (offline FD-glyph)"
        )
    found = Path(path).expanduser() if path else Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if not found.is_file():
        raise MissingFileError(
            f"Inception weights not found at {found}; download {INCEPTION_FILE} (torch-fidelity release v0.2.0) "
            "there or pass domain.inception_weights=PATH, or use domain.fid_features=glyph (offline FD-glyph)"
        )
    return found


def inception_fid(path: str | None = None) -> torch.nn.Module:
    """torchmetrics' standard FID (Inception-v3, 2048 pooled features) from the local weights file."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    weights = str(inception_weights(path))
    return FrechetInceptionDistance(feature=2048, normalize=True, feature_extractor_weights_path=weights)


def inception_style_score(probs: torch.Tensor) -> float:
    """exp(mean_x KL(p(y|x) || p(y))) over class probabilities ``[N, C]`` (1 = no information, C = best)."""
    if len(probs) == 0:
        return float("nan")
    p = probs.double().clamp_min(1e-12)
    marginal = p.mean(dim=0, keepdim=True)
    return math.exp((p * (p.log() - marginal.log())).sum(dim=1).mean().item())


def glyph_metrics(
    fake: torch.Tensor,
    labels: torch.Tensor | None,
    classifier: GlyphClassifier,
    real: torch.Tensor,
    fid_features: str = "glyph",
    inception_path: str | None = None,
) -> dict[str, float]:
    """Metrics of generated glyphs ``fake[N, 1, H, W]`` in [0, 1] drawn for class indices ``labels`` (or None)."""
    if fid_features not in FEATURES:
        raise UnknownChoiceError("domain.fid_features", fid_features, FEATURES)
    probs = predict_proba(classifier, fake)
    out = {
        "fd_glyph": frechet_distance(glyph_fid(classifier), real, fake),
        "is_glyph": inception_style_score(probs),
    }
    if labels is not None and len(labels):
        out["accuracy"] = (probs.argmax(dim=1) == labels.cpu()).double().mean().item()
    if fid_features == "inception":
        out["fid"] = frechet_distance(inception_fid(inception_path), real.expand(-1, 3, -1, -1),
                                      fake.expand(-1, 3, -1, -1))
    return out


def pixel_diversity(images: torch.Tensor) -> float:
    """Mean pairwise root-mean-square pixel distance of images ``[N, C, H, W]`` in [0, 1] (NaN for fewer than 2)."""
    if len(images) < 2:
        return float("nan")
    flat = images.flatten(1).double()
    dist = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    n = len(flat)
    return (dist.sum() / (n * (n - 1))).item()
