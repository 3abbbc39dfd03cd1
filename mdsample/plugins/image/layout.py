"""The token layout of the house glyph model: one vocabulary for image codes, class tokens and special tokens.

A canvas is ``[class token] + h*w image codes`` (row-major latent grid of the VQ tokenizer). Ids:

    [0, K)          VQ codebook entries (the only ids an image position may take)
    [K, K + C)      one token per class, frozen at position 0 (the trainer's ``frozen_prefix``)
    K + C           the null class: position 0 of unconditional rows, which classifier-free guidance contrasts with
    K + C + 1       padding (never occurs: images have a fixed size; the house model config requires an id)
    K + C + 2       mask

Written as ``glyph.json`` beside the weights, together with everything sampling needs to know about the data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample.files import read_json

LAYOUT_FILE = "glyph.json"


@dataclass(frozen=True)
class GlyphLayout:
    """Vocabulary layout of a ``codebook_size``-code tokenizer with a ``grid`` x ``grid`` latent, over ``classes``."""

    codebook_size: int
    grid: int
    classes: str
    image_size: int = 32

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def null_id(self) -> int:
        return self.codebook_size + self.num_classes

    @property
    def pad_id(self) -> int:
        return self.null_id + 1

    @property
    def mask_id(self) -> int:
        return self.null_id + 2

    @property
    def vocab_size(self) -> int:
        return self.null_id + 3

    @property
    def length(self) -> int:
        """Canvas length: the class token plus the latent grid."""
        return 1 + self.grid * self.grid

    def class_index(self, label: str) -> int:
        """Index of the class named ``label`` (one character); UnknownChoiceError lists the classes."""
        if label not in self.classes or len(label) != 1:
            raise UnknownChoiceError("class", label, list(self.classes))
        return self.classes.index(label)

    def class_token(self, index: int) -> int:
        return self.codebook_size + index

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> GlyphLayout:
        if not path.is_file():
            raise MissingFileError(f"{path} is missing: not a glyph model directory made by `mdsample train`")
        try:
            return cls(**read_json(path, "glyph layout"))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path} is not a valid glyph layout: {exc}") from None
