"""What the image plugin says about its domain without importing it: options, tasks, defaults, description.

Kept free of torch and diffusers, so that ``mdsample list`` and config checks read it at once (mdsample.describe);
domain.py builds the domain from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mdsample.options import DomainOptions

DESCRIPTION = "class-conditional 32x32 glyphs (house VQ + token model) or aMUSEd; FD-glyph, accuracy, PNG grids"
TASKS = ("class-conditional",)
DEFAULT_CLASSES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Token temperature 1 and 12 steps as aMUSEd's pipeline; the adaptive rules' thresholds are looser than for
# text because tokens are sampled, and 12 steps is their fallback schedule.
DEFAULTS = {
    "decode": {"steps": 12, "temperature": 1.0},
    "n": 64,
    "samplers": {
        "maskgit": {"choice_temperature": 4.5},
        "klass": {"conf_threshold": 0.8, "kl_threshold": 0.01, "history": 2},
        "threshold": {"threshold": 0.8},
        "med": {"entropy_threshold": 0.5},
        "ar_med": {"entropy_threshold": 0.5},
    },
}


@dataclass
class ImageOptions(DomainOptions):
    """Sampling: ``guidance`` (classifier-free guidance weight w, 0 = off), ``negative_prompt`` and
    ``aesthetic_score`` (aMUSEd), ``fid_features`` (glyph | inception) with ``inception_weights`` (a local file),
    ``reference_variants`` (images per class and held-out font in the FD reference set).

    Training (``mdsample train --domain image``): ``classes`` (one character each), ``variants`` (images per class
    and training font), ``data_seed``, the tokenizer stage ``vq_*`` (or ``vqvae``: reuse a trained tokenizer
    directory), ``classifier_steps``, and ``cond_drop`` (share of extra training rows with the null class, for
    guidance). The token model's steps, batch and size are the ``train.*`` options.
    """

    guidance: float = 0.0
    negative_prompt: str = ""
    aesthetic_score: float = 6.0
    fid_features: str = "glyph"
    inception_weights: str | None = None
    reference_variants: int = 8
    classes: str = DEFAULT_CLASSES
    variants: int = 160
    data_seed: int = 0
    vq_steps: int = 3000
    vq_batch_size: int = 256
    vq_lr: float = 1e-3
    vq_codebook_size: int = 256
    vq_channels: list[int] = field(default_factory=lambda: [24, 48, 48])
    vq_latent_channels: int = 16
    vqvae: str | None = None
    classifier_steps: int = 2000
    cond_drop: float = 0.1
