import importlib.util

import numpy as np
import pytest
import scipy.linalg
import torch

from mdsample.errors import MissingFileError, UnknownChoiceError
from mdsample.plugins.image import metrics
from mdsample.plugins.image.classifier import GlyphClassifier, GlyphFeatures


def _reference_fd(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook formula: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_the_scipy_formula():
    torch.manual_seed(0)
    classifier = GlyphClassifier(num_classes=3, width=8).eval()
    real = torch.rand(60, 1, 32, 32)
    fake = (torch.rand(50, 1, 32, 32) * 0.5 + 0.3).clamp(0, 1)
    got = metrics.frechet_distance(metrics.glyph_fid(classifier), real, fake, batch=16)
    features = GlyphFeatures(classifier)
    expected = _reference_fd(features(real).double().numpy(), features(fake).double().numpy())
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert got > 0


def test_frechet_distance_of_a_set_with_itself_is_zero_and_nan_below_two():
    classifier = GlyphClassifier(num_classes=3, width=8).eval()
    images = torch.rand(40, 1, 32, 32)
    assert metrics.frechet_distance(metrics.glyph_fid(classifier), images, images) == pytest.approx(0, abs=1e-3)
    assert np.isnan(metrics.frechet_distance(metrics.glyph_fid(classifier), images, images[:1]))


def test_feature_module_takes_torchmetrics_probe_shapes():
    features = GlyphFeatures(GlyphClassifier(num_classes=3, width=8))
    assert features.num_features == 16
    probe = torch.randint(0, 255, (2, 3, 299, 299), dtype=torch.uint8)
    assert features(probe).shape == (2, 16)


def test_inception_style_score_bounds():
    c = 4
    uniform = torch.full((8, c), 1 / c)
    confident = torch.eye(c).repeat(2, 1)
    assert metrics.inception_style_score(uniform) == pytest.approx(1.0)
    assert metrics.inception_style_score(confident) == pytest.approx(c, rel=1e-6)
    assert np.isnan(metrics.inception_style_score(torch.zeros(0, c)))


def test_glyph_metrics_accuracy_counts_matching_predictions(monkeypatch):
    classifier = GlyphClassifier(num_classes=3, width=8).eval()
    images = torch.rand(6, 1, 32, 32)
    predicted = classifier(images).argmax(-1)
    out = metrics.glyph_metrics(images, predicted, classifier, torch.rand(10, 1, 32, 32))
    assert out["accuracy"] == 1.0 and out["fd_glyph"] > 0 and 1.0 <= out["is_glyph"] <= 3.0
    wrong = metrics.glyph_metrics(images, (predicted + 1) % 3, classifier, torch.rand(10, 1, 32, 32))
    assert wrong["accuracy"] == 0.0
    with pytest.raises(UnknownChoiceError, match="fid_features"):
        metrics.glyph_metrics(images, predicted, classifier, images, fid_features="clip")


def test_missing_inception_weights_give_an_actionable_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    if importlib.util.find_spec("torch_fidelity") is None:
        with pytest.raises(MissingFileError, match="pip install torch-fidelity.*fid_features=glyph"):
            metrics.inception_weights()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "torch_fidelity" else real_find_spec(name, *a))
    with pytest.raises(MissingFileError, match=f"Inception weights not found at .*{metrics.INCEPTION_FILE}"):
        metrics.inception_weights()
    with pytest.raises(MissingFileError, match="nowhere.pth"):
        metrics.inception_weights(str(tmp_path / "nowhere.pth"))


def test_pixel_diversity():
    same = torch.zeros(4, 1, 8, 8)
    assert metrics.pixel_diversity(same) == 0.0
    apart = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    assert metrics.pixel_diversity(apart) == pytest.approx(1.0)
    assert np.isnan(metrics.pixel_diversity(same[:1]))
