"""The glyph image set: characters rendered at 32x32 from the TrueType fonts that matplotlib ships.

Why glyphs: they are available offline wherever matplotlib is installed (no download, no licence question: DejaVu,
STIX and the Computer Modern fonts are freely redistributable), they have natural classes (the characters) for
class-conditional generation and for a classifier-based metric, real variation (serif / sans / mono, bold, italic)
and a clean notion of held-out data: whole fonts are kept out of training and serve as the evaluation set.
scikit-learn's digits (1,797 images of 8x8) are too few and too small to train a VQ tokenizer worth the name.

Every image is a deterministic function of (font, character, variant): the variant's seed draws a scale, a rotation
and an offset, so two machines render identical sets. Rendering supersamples at 4x and box-filters down to 32x32.
Large sets are rendered by a process pool and cached as ``.npz`` under ``$MDSAMPLE_DATA/image`` (else
``~/.cache/mdsample/image``), keyed by everything that determines the pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mdsample.errors import ConfigError
from mdsample.plugins.image.options import DEFAULT_CLASSES

SIZE = 32
SUPERSAMPLE = 4
# Fonts that map ASCII codes to unrelated shapes (TeX symbol and extension encodings) or draw placeholder boxes.
EXCLUDED_FONTS = ("cmex10.ttf", "cmsy10.ttf", "LastResortHE-Regular.ttf")
EVAL_EVERY = 4
"""Every 4th usable font (sorted by file name, starting with the 4th) is held out for evaluation."""
RENDER_VERSION = 1
"""Bump when rendering changes, so caches made by older code are not reused."""


@dataclass(frozen=True)
class Variation:
    """Ranges of the per-image random transform: glyph size as a fraction of the canvas, degrees, pixels."""

    scale: tuple[float, float] = (0.6, 0.9)
    rotation: float = 10.0
    offset: float = 2.5


@dataclass
class GlyphSet:
    """Images ``uint8 [N, 32, 32]`` (white glyph on black), class indices ``[N]``, and the font of each image."""

    images: np.ndarray
    labels: np.ndarray
    fonts: np.ndarray
    classes: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> GlyphSet:
        return GlyphSet(self.images[keep], self.labels[keep], self.fonts[keep], self.classes)


def check_classes(classes: str) -> str:
    """The class string (one character per class), validated: non-empty, distinct, printable characters."""
    if not classes or len(set(classes)) != len(classes) or not classes.isprintable() or " " in classes:
        raise ConfigError(f"domain.classes={classes!r} must be distinct printable characters, e.g. {DEFAULT_CLASSES}")
    return classes


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def usable_fonts(classes: str) -> tuple[str, ...]:
    """File names of the shipped fonts that have a glyph for every class (sorted, exclusions removed)."""
    from matplotlib.ft2font import FT2Font

    names = []
    for path in sorted(font_dir().glob("*.ttf")):
        if path.name in EXCLUDED_FONTS:
            continue
        font = FT2Font(str(path))
        if all(font.get_char_index(ord(c)) for c in classes):
            names.append(path.name)
    if len(names) < 2:
        raise ConfigError(f"fewer than 2 matplotlib fonts cover every class of {classes!r}; choose other classes")
    return tuple(names)


def font_split(classes: str) -> dict[str, tuple[str, ...]]:
    """``{"train": fonts, "eval": fonts}``: every ``EVAL_EVERY``-th usable font is held out."""
    fonts = usable_fonts(classes)
    held = {f for i, f in enumerate(fonts) if i % EVAL_EVERY == EVAL_EVERY - 1} or {fonts[-1]}
    return {"train": tuple(f for f in fonts if f not in held), "eval": tuple(f for f in fonts if f in held)}


def _render_font(args: tuple[str, str, np.ndarray]) -> np.ndarray:
    """All images of one font: ``params[c, v] = (scale, degrees, dx, dy)`` -> uint8 [C, V, 32, 32]."""
    from PIL import Image, ImageDraw, ImageFont

    font_name, classes, params = args
    big = SIZE * SUPERSAMPLE
    font = ImageFont.truetype(str(font_dir() / font_name), big)
    out = np.zeros((len(classes), params.shape[1], SIZE, SIZE), dtype=np.uint8)
    for ci, char in enumerate(classes):
        left, top, right, bottom = font.getbbox(char)
        glyph = Image.new("L", (right - left + 8, bottom - top + 8), 0)
        ImageDraw.Draw(glyph).text((4 - left, 4 - top), char, fill=255, font=font)
        for vi, (scale, degrees, dx, dy) in enumerate(params[ci]):
            factor = scale * big / max(glyph.size)
            size = (max(1, round(glyph.width * factor)), max(1, round(glyph.height * factor)))
            shape = glyph.resize(size, Image.Resampling.LANCZOS).rotate(
                degrees, resample=Image.Resampling.BICUBIC, expand=True
            )
            canvas = Image.new("L", (big, big), 0)
            x = round((big - shape.width) / 2 + dx * SUPERSAMPLE)
            y = round((big - shape.height) / 2 + dy * SUPERSAMPLE)
            canvas.paste(shape, (x, y))
            out[ci, vi] = np.asarray(canvas.resize((SIZE, SIZE), Image.Resampling.BOX))
    return out


def _params(font_index: int, n_classes: int, variants: int, seed: int, variation: Variation) -> np.ndarray:
    rng = np.random.default_rng([seed, font_index, RENDER_VERSION])
    shape = (n_classes, variants)
    return np.stack(
        [
            rng.uniform(*variation.scale, size=shape),
            rng.uniform(-variation.rotation, variation.rotation, size=shape),
            rng.uniform(-variation.offset, variation.offset, size=shape),
            rng.uniform(-variation.offset, variation.offset, size=shape),
        ],
        axis=-1,
    )


def render(
    fonts: tuple[str, ...],
    classes: str,
    variants: int,
    seed: int = 0,
    variation: Variation = Variation(),
    workers: int | None = None,
) -> GlyphSet:
    """Render ``variants`` images of every class in every font; ``workers`` processes (None: one per font, for
    large sets)."""
    if variants < 1:
        raise ConfigError(f"domain.variants must be >= 1, got {variants}")
    classes = check_classes(classes)
    all_fonts = usable_fonts(classes)
    unknown = [f for f in fonts if f not in all_fonts]
    if unknown:
        raise ConfigError(f"fonts {unknown} do not cover {classes!r}; usable: {', '.join(all_fonts)}")
    jobs = [(f, classes, _params(all_fonts.index(f), len(classes), variants, seed, variation)) for f in fonts]
    if workers is None:  # a process pool pays off from a few thousand images on
        large = len(fonts) * len(classes) * variants >= 4096
        workers = min(len(jobs), os.cpu_count() or 1) if large else 1
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            per_font = list(pool.map(_render_font, jobs))
    else:
        per_font = [_render_font(job) for job in jobs]
    images = np.stack(per_font).reshape(-1, SIZE, SIZE)
    labels = np.broadcast_to(np.arange(len(classes))[None, :, None], (len(fonts), len(classes), variants))
    font_ids = np.broadcast_to(np.arange(len(fonts))[:, None, None], labels.shape)
    return GlyphSet(images, labels.reshape(-1).astype(np.int64), np.asarray(fonts)[font_ids.reshape(-1)], classes)


def cache_dir() -> Path:
    root = os.environ.get("MDSAMPLE_DATA")
    return Path(root).expanduser() / "image" if root else Path.home() / ".cache" / "mdsample" / "image"


def load_split(
    split: str, classes: str, variants: int, seed: int = 0, variation: Variation = Variation(), cached: bool = True
) -> GlyphSet:
    """The ``train`` or ``eval`` split, rendered once and then read from the cache (``cached=False``: no cache)."""
    fonts = font_split(check_classes(classes))[split]
    key = json.dumps([RENDER_VERSION, split, fonts, classes, variants, seed, asdict(variation)])
    path = cache_dir() / f"glyphs-{split}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if cached and path.is_file():
        with np.load(path) as f:
            return GlyphSet(f["images"], f["labels"], f["fonts"], classes)
    data = render(fonts, classes, variants, seed, variation)
    if cached:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=data.images, labels=data.labels, fonts=data.fonts)
        tmp.replace(path)
    return data
