"""What this plugin says about its domain and rule without importing them (no torch): options, tasks, defaults.

mdsample reads these through the DomainInfo / SamplerInfo this plugin registers (``__init__.py``), so that
``mdsample list`` and config errors answer at once; domain.py and spaced.py import the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.errors import ConfigError
from mdsample.options import DomainOptions

DESCRIPTION = "promoter-like DNA (32 bases, planted TATA box + restriction site, GC band); FASTA; IUPAC prompts"
SPACED_DESCRIPTION = ("Top-k by confidence among masked positions that are the most confident within radius (2) on "
                      "each side.")
TASKS = ("unconditional",)
# Sampled tokens (temperature 1): argmax decoding would return the model's single most likely background.
# Confidence of the distribution's mode, not of the drawn token: ranking positions by their luckiest draws
# picks G/C draws first and pushes the GC content out of its band (measured on the shipped model, n=256,
# confidence rule: valid 0.17 with "drawn", 0.60 with "mode").
DEFAULTS = {
    "n": 64,
    "decode": {"temperature": 1.0, "confidence": "mode"},
    "samplers": {"klass": {"conf_threshold": 0.7, "kl_threshold": 0.05}, "spaced": {"radius": 2}},
}


@dataclass
class DnaOptions(DomainOptions):
    """``kmer``: k of the k-mer spectrum metric. ``train_rows`` and ``data_seed``: the synthetic training corpus
    (also what novelty is measured against; keep them at the values the model was trained with)."""

    kmer: int = 4
    train_rows: int = 131072
    data_seed: int = 0


@dataclass
class SpacedConfig:
    radius: int = 2

    def __post_init__(self) -> None:
        if self.radius < 0:
            raise ConfigError(f"sampler.radius must be >= 0, got {self.radius}")
