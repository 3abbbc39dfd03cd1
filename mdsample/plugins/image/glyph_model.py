"""The house glyph model as a Denoiser: ModernBERT token model + VQ detokenizer + classifier, one directory.

Layout of a model directory (what ``mdsample train --domain image`` writes, and what ships in ``weights/``)::

    config.json  model.safetensors   the class-conditional token model (ModernBertForMaskedLM, MDLM objective)
    glyph.json                       the token layout (layout.py)
    vqvae/                           the VQ tokenizer (diffusers VQModel)
    classifier/                      the glyph classifier (features for FD-glyph, conditional accuracy)

Classifier-free guidance: the token model was trained with the class token replaced by the null class on a fraction
of rows, so ``logits = cond + w * (cond - uncond)`` (on log-probabilities) sharpens samples towards their class for
``w > 0``; ``w = 0`` costs one forward per step, ``w > 0`` two (in one batch). Image positions may only take
codebook ids: every other id gets probability zero.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from diffusers import VQModel

from mdsample.errors import ConfigError, MissingFileError
from mdsample.files import check_model_dir
from mdsample.models.house import HouseDenoiser, load_house_denoiser
from mdsample.plugins.image import vq
from mdsample.plugins.image.classifier import GlyphClassifier
from mdsample.plugins.image.layout import LAYOUT_FILE, GlyphLayout

VQ_DIR = "vqvae"
CLASSIFIER_DIR = "classifier"


def is_glyph_model(path: Path) -> bool:
    return (path / LAYOUT_FILE).is_file()


def _load_part(cls: type, path: Path, device: torch.device | str) -> torch.nn.Module:
    if not (path / "config.json").is_file():
        raise MissingFileError(f"{path} is missing: a glyph model directory needs {path.name}/ beside glyph.json")
    check_model_dir(path)
    return cls.from_pretrained(str(path), torch_dtype=torch.float32).to(device).eval()


def load_vqvae(path: Path, device: torch.device | str = "cpu") -> VQModel:
    return _load_part(VQModel, path, device)


@lru_cache(maxsize=4)
def load_classifier(path: str) -> GlyphClassifier:
    """The classifier of a model directory's ``classifier/`` (CPU, cached: metrics of every batch reuse it)."""
    return _load_part(GlyphClassifier, Path(path), "cpu")


class GlyphDenoiser:
    """Denoiser over ``[class token] + codes`` canvases; ``detokenize`` turns finished canvases into images."""

    def __init__(self, house: HouseDenoiser, vqvae: VQModel, layout: GlyphLayout, model_dir: Path, guidance: float):
        if guidance < 0:
            raise ConfigError(f"domain.guidance must be >= 0 (0: no classifier-free guidance), got {guidance}")
        if (house.vocab_size, house.mask_id) != (layout.vocab_size, layout.mask_id):
            raise ConfigError(f"{model_dir}: token model (vocab {house.vocab_size}, mask {house.mask_id}) does not "
                              f"match glyph.json (vocab {layout.vocab_size}, mask {layout.mask_id})")
        self.house = house
        self.vqvae = vqvae
        self.layout = layout
        self.model_dir = model_dir
        self.guidance = guidance
        self.mask_id = layout.mask_id
        self.vocab_size = layout.vocab_size
        self.not_code = torch.arange(layout.vocab_size, device=house.device) >= layout.codebook_size

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        if self.guidance == 0:
            logits = self.house(tokens, **conditioning)
        else:
            uncond = tokens.clone()
            uncond[:, 0] = self.layout.null_id
            both = self.house(torch.cat([tokens, uncond]), **conditioning).log_softmax(-1)
            cond, free = both.chunk(2)
            logits = cond + self.guidance * (cond - free.clamp_min(torch.finfo(free.dtype).min))
        return logits.masked_fill(self.not_code, float("-inf"))

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 1, 32, 32]`` in [0, 1] of finished canvases."""
        return vq.decode(self.vqvae, tokens[:, 1:])


def load_glyph_model(model_dir: Path, device: torch.device, guidance: float) -> GlyphDenoiser:
    layout = GlyphLayout.load(model_dir / LAYOUT_FILE)
    house = load_house_denoiser(model_dir, device)
    vqvae = load_vqvae(model_dir / VQ_DIR, device)
    load_classifier(str(model_dir / CLASSIFIER_DIR))  # fail now, not after sampling, if it is missing
    return GlyphDenoiser(house, vqvae, layout, model_dir, guidance)
