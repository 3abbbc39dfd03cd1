"""What the molecule plugin says about its domain without importing it: options, tasks, defaults, description.

Kept free of torch and RDKit, so that ``mdsample list`` and config checks read it at once (mdsample.describe);
domain.py builds the domain from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.options import DomainOptions

DESCRIPTION = "drug-like molecules (MOSES) as SMILES or SELFIES; MOSES metrics; infill/prefix templates"
TASKS = ("unconditional",)
# Temperature 1.0 with mode confidence, KLASS at (0.9, 0.005), then 50 corrector steps re-masking 6 positions each:
# the corrector repairs what the one-pass decode gets wrong without shrinking the distribution as a lower
# temperature or a nucleus does (SELFIES, 4,000 samples: FCD/Test 2.06 -> 0.99 at validity 0.996; T 0.8 gave 1.95,
# top-p 0.9 2.17). Per-rule thresholds are the 10,000-sample table's best (BENCHMARKS.md, molecule). n is 32 so
# that the README's main command stays within 30 s on a 2-core CPU with the corrector's 50 extra forward passes
# (27 s; 64 molecules take 40 s there, about a second on a GPU).
DEFAULTS = {
    "decode": {"temperature": 1.0, "confidence": "mode", "correct_steps": 50, "correct_positions": 6},
    "n": 32,
    "samplers": {
        "klass": {"conf_threshold": 0.9, "kl_threshold": 0.005, "history": 2},
        "threshold": {"threshold": 0.9},
        "med": {"entropy_threshold": 0.1},
        "ar_med": {"entropy_threshold": 0.3},
        "eb": {"gamma": 0.1},
    },
}
DATA_HELP = "prepare MOSES data for the molecule domain (splits, checksums; optional encoding and reference rebuild)"


DEFAULT_REPRESENTATION = "selfies"
"""Chosen by the 10,000-sample table (BENCHMARKS.md, molecule): with ``--sampler klass`` at the default settings the
SELFIES model gives valid 0.990 (SMILES: 0.854) at FCD/Test 1.99 (SMILES: 1.55); a chemist's first look is at
validity, and SMILES, the better FCD, stays one option away (``domain.representation=smiles``)."""


@dataclass
class MoleculeOptions(DomainOptions):
    """``representation``: smiles | selfies; None (the default) takes a ``--model``'s own (its vocab.json), else
    DEFAULT_REPRESENTATION. ``data_dir``: prepared MOSES data (default $MDSAMPLE_DATA/molecule)."""

    representation: str | None = None
    data_dir: str | None = None
