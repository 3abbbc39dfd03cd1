"""What the molecule plugin says about its domain without importing it: options, tasks, defaults, description.

Kept free of torch and RDKit, so that ``mdsample list`` and config checks read it at once (mdsample.describe);
domain.py builds the domain from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.options import DomainOptions

DESCRIPTION = "drug-like molecules (MOSES) as SMILES or SELFIES; MOSES metrics; infill/prefix templates"
TASKS = ("unconditional",)
# Temperature 0.8 with mode confidence and KLASS at (0.9, 0.005): the best validity/FCD trade-off of the 10,000-sample
# table on both shipped models (T 0.6 collapses uniqueness and FCD, T 1.0 costs validity; looser KLASS thresholds
# lose validity fast). Per-rule thresholds are the table's best at the same temperature.
DEFAULTS = {
    "decode": {"temperature": 0.8, "confidence": "mode"},
    "n": 64,
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
