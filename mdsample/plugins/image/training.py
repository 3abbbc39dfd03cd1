"""``mdsample train --domain image``: the three stages of the house glyph model, in one run directory.

1. VQ tokenizer (vq.py) on the training fonts, saved to ``vqvae/`` (skipped when ``domain.vqvae`` names one);
2. glyph classifier (classifier.py) on the training fonts, scored on the held-out fonts, saved to ``classifier/``;
3. the class-conditional token model through the generic ``mdsample.train.train`` (MDLM objective, ModernBERT house
   model): the domain's ``train_data`` tokenises the glyphs with the tokenizer of stage 1 and puts the class token
   at position 0, which the trainer keeps frozen (``frozen_prefix=1``).

Why the house ModernBERT and not UVit2DModel for stage 3: every domain then trains through the same objective,
trainer and checkpoint format, and a class token at position 0 of a bidirectional encoder is all the conditioning
glyphs need (UVit2DModel's text cross-attention and micro-conditioning would be dead weight at this size).
Stage 1 and 2 log their losses to stdout; stage 3 also writes ``train_log.jsonl``. MODEL_CARD.md gets a section for
the first two stages and the sha256 and size of every weight file.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import logging as diffusers_logging

from mdsample.models.house import sha256_file
from mdsample.plugins.image import glyphs
from mdsample.plugins.image.classifier import train_classifier
from mdsample.plugins.image.glyph_model import CLASSIFIER_DIR, VQ_DIR, load_vqvae
from mdsample.plugins.image.vq import VQTrainConfig, train_vqvae

if TYPE_CHECKING:
    from mdsample.plugins.image.domain import ImageDomain, ImageOptions
    from mdsample.train import TrainConfig

SIZE_BUDGET = 8_000_000
"""Bytes all weight files of the domain may take together (shipped inside the package)."""

DATA_CHOICE = (
    "Data: characters rendered at 32x32 from the TrueType fonts matplotlib ships (deterministic scale, rotation and "
    "offset per image; `glyphs.py`). Chosen over scikit-learn's digits (1,797 images of 8x8: too few and too small "
    "for a VQ tokenizer) because it is offline, freely licensed, has natural classes for class-conditional "
    "generation and a classifier metric, and allows an honest held-out set: whole fonts never seen in training."
)


def device_of(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def save_float16(model: ModelMixin, path: Path) -> None:
    """``save_pretrained`` in float16 safetensors (the model is cast), without diffusers' notice about casting."""
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        model.to(torch.float16).save_pretrained(str(path))
    finally:
        diffusers_logging.set_verbosity(level)


def vq_config(options: ImageOptions) -> VQTrainConfig:
    return VQTrainConfig(
        codebook_size=options.vq_codebook_size,
        channels=list(options.vq_channels),
        latent_channels=options.vq_latent_channels,
        steps=options.vq_steps,
        batch_size=options.vq_batch_size,
        lr=options.vq_lr,
    )


def train_glyph_model(
    domain: ImageDomain, options: ImageOptions, cfg: TrainConfig, out_dir: Path, command: str = ""
) -> Path:
    """Run the three stages into ``out_dir`` and return it."""
    from mdsample.train import train

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = device_of(cfg.device)
    start = time.perf_counter()
    train_set = glyphs.load_split("train", options.classes, options.variants, options.data_seed)
    eval_set = glyphs.load_split("eval", options.classes, options.reference_variants, options.data_seed)
    print(f"glyphs: {len(train_set):,} train images ({len(set(train_set.fonts))} fonts), {len(eval_set):,} eval "
          f"images ({len(set(eval_set.fonts))} held-out fonts), {time.perf_counter() - start:.1f}s", flush=True)

    if options.vqvae is None:
        vqvae, vq_stats = train_vqvae(train_set.images, eval_set.images, vq_config(options), device, cfg.seed)
        save_float16(vqvae, out_dir / VQ_DIR)
        vq_note = (f"trained here for {options.vq_steps} steps (batch {options.vq_batch_size}) in "
                   f"{vq_stats['train_seconds']:.0f}s; held-out MSE {vq_stats['val_mse']:.4f}, "
                   f"{vq_stats['codes_used']:.0f}/{vq_stats['codebook_size']:.0f} codes used")
    else:
        source = Path(options.vqvae).expanduser()
        load_vqvae(source)  # fail early on a bad path
        if source.resolve() != (out_dir / VQ_DIR).resolve():
            shutil.copytree(source, out_dir / VQ_DIR, dirs_exist_ok=True)
        vq_note = f"reused from {source}"

    classifier, cls_stats = train_classifier(
        train_set.images, train_set.labels, eval_set.images, eval_set.labels, len(options.classes),
        options.classifier_steps, device, seed=cfg.seed,
    )
    save_float16(classifier, out_dir / CLASSIFIER_DIR)
    del train_set, eval_set

    token_options = dataclasses.replace(options, vqvae=str(out_dir / VQ_DIR))
    train(domain, token_options, cfg, out_dir, command=command)
    _append_card(out_dir, options, vq_note, cls_stats, time.perf_counter() - start)
    return out_dir


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in model_dir.rglob("*.safetensors"))


def _append_card(model_dir: Path, options: ImageOptions, vq_note: str, cls_stats: dict, seconds: float) -> None:
    files = weight_files(model_dir)
    total = sum(p.stat().st_size for p in files)
    lines = [
        "## Image domain: tokenizer, classifier, data",
        "",
        DATA_CHOICE,
        f"Classes: `{options.classes}`; {options.variants} variants per class and training font; held-out fonts: "
        f"{', '.join(glyphs.font_split(options.classes)['eval'])}.",
        "",
        f"- VQ tokenizer (diffusers VQModel, channels {list(options.vq_channels)}, codebook "
        f"{options.vq_codebook_size}): {vq_note}",
        f"- glyph classifier: {options.classifier_steps} steps in {cls_stats['train_seconds']:.0f}s, accuracy on "
        f"held-out fonts {cls_stats['val_accuracy']:.4f} (its features give FD-glyph)",
        f"- token model conditioning: class token at position 0, null class on {options.cond_drop:.0%} extra rows "
        "(classifier-free guidance via domain.guidance)",
        f"- all three stages: {seconds / 60:.1f} min",
        f"- weights, {total:,} bytes in total (budget {SIZE_BUDGET:,}):",
        *[f"  - `{p.relative_to(model_dir)}`: {p.stat().st_size:,} bytes, sha256 `{sha256_file(p)}`" for p in files],
        "",
    ]
    with open(model_dir / "MODEL_CARD.md", "a") as card:
        card.write("\n".join(lines))
    if total > SIZE_BUDGET:
        print(f"warning: weights take {total:,} bytes, over the {SIZE_BUDGET:,}-byte budget of the shipped model; "
              "shrink domain.vq_channels or train.size", flush=True)
