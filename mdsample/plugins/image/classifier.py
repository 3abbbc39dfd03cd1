"""The glyph classifier: the project's own feature extractor for FD-glyph and the judge of conditional accuracy.

Why not Inception: its weights are a download (torch-fidelity), unavailable offline and in CI, and ImageNet features
say little about 32x32 glyphs. A small CNN trained on the training fonts and scored on the held-out fonts gives
features that separate what matters here (which character, which style), so the Fréchet distance over its pooled
features ("FD-glyph") plays the role FID plays for natural images, and its predictions give the accuracy of
class-conditional samples. The classifier is a diffusers ``ModelMixin`` so it saves and loads like the tokenizer
(``save_pretrained`` in float16 safetensors).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from mdsample.errors import ConfigError


class GlyphClassifier(ModelMixin, ConfigMixin):
    """Four 3x3 conv layers (three with stride 2) with GroupNorm and GELU, global average pooling, a linear head."""

    @register_to_config
    def __init__(self, num_classes: int, width: int = 32, image_size: int = 32):
        super().__init__()
        w = width
        layers: list[nn.Module] = []
        for c_in, c_out, stride in [(1, w, 1), (w, w, 2), (w, 2 * w, 2), (2 * w, 2 * w, 2)]:
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.GroupNorm(8, c_out), nn.GELU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * w, num_classes)

    @property
    def num_features(self) -> int:
        return self.head.in_features

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[N, 2 * width]`` of images ``[N, 1, H, W]`` in [0, 1]."""
        return self.body(images.to(self.dtype) * 2.0 - 1.0).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``[N, num_classes]``."""
        return self.head(self.features(images))


class GlyphFeatures(nn.Module):
    """The classifier's features as torchmetrics' FID feature module: any ``[N, C, H, W]`` batch, float in [0, 1]
    or uint8, is turned grey, resized to the classifier's input size and embedded (``num_features`` is set, so
    torchmetrics need not probe it with a 299x299 image, though it may)."""

    def __init__(self, classifier: GlyphClassifier):
        super().__init__()
        self.classifier = classifier.eval()
        self.num_features = classifier.num_features

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(prepare(images, self.classifier.config.image_size)).float()


def prepare(images: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, C, H, W]`` (uint8 or float in [0, 1]) -> float ``[N, 1, size, size]`` in [0, 1]."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


@torch.no_grad()
def predict_proba(classifier: GlyphClassifier, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Class probabilities ``[N, C]`` (float32, CPU) of images ``[N, C, H, W]``."""
    size = classifier.config.image_size
    out = [classifier(prepare(x, size).to(classifier.device)).float().softmax(-1).cpu()
           for x in images.split(batch_size)]
    return torch.cat(out)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    num_classes: int,
    steps: int,
    device: torch.device,
    batch_size: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[GlyphClassifier, dict[str, float]]:
    """Fit the classifier with AdamW and cosine decay; returns it (eval mode) and its held-out-font accuracy."""
    if steps < 1:
        raise ConfigError(f"domain.classifier_steps must be >= 1, got {steps}")
    torch.manual_seed(seed)
    gen = torch.Generator(device).manual_seed(seed)
    model = GlyphClassifier(num_classes=num_classes, image_size=images.shape[-1]).to(device).train()
    x_all = torch.from_numpy(images).to(device)
    y_all = torch.from_numpy(labels).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        idx = torch.randint(len(x_all), (batch_size,), device=device, generator=gen)
        loss = F.cross_entropy(model(x_all[idx].unsqueeze(1).float() / 255.0), y_all[idx], label_smoothing=0.05)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % 100 == 0 or step == steps:
            print(f"classifier step {step:>6}/{steps}  loss {loss.item():.4f}", flush=True)
    model.eval()
    probs = predict_proba(model, torch.from_numpy(val_images).unsqueeze(1))
    accuracy = (probs.argmax(-1).numpy() == val_labels).mean().item()
    print(f"classifier accuracy on held-out fonts: {accuracy:.4f}", flush=True)
    return model, {"val_accuracy": accuracy, "train_seconds": time.perf_counter() - start}
