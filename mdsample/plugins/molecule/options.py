"""What the molecule plugin says about its domain without importing it: options, tasks, defaults, description.

Kept free of torch and RDKit, so that ``mdsample list`` and config checks read it at once (mdsample.describe);
domain.py builds the domain from the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.options import DomainOptions

DESCRIPTION = "drug-like molecules (MOSES) as SMILES or SELFIES; MOSES metrics; infill/prefix templates"
TASKS = ("unconditional",)
DEFAULTS = {
    "decode": {"temperature": 0.8, "confidence": "mode"},
    "n": 64,
    "samplers": {
        "klass": {"conf_threshold": 0.8, "kl_threshold": 0.01, "history": 2},
        "threshold": {"threshold": 0.8},
        "med": {"entropy_threshold": 0.3},
        "ar_med": {"entropy_threshold": 0.3},
    },
}
DATA_HELP = "prepare MOSES data for the molecule domain (splits, checksums; optional encoding and reference rebuild)"


DEFAULT_REPRESENTATION = "selfies"
"""Chosen by the 10,000-sample table (BENCHMARKS.md, molecule): with ``--sampler klass`` at the default settings the
SELFIES model gives valid 0.963 (SMILES: 0.820) at FCD/Test 2.14 (SMILES: 1.55); a chemist's first look is at
validity, and SMILES stays one option away (``domain.representation=smiles``)."""


@dataclass
class MoleculeOptions(DomainOptions):
    """``representation``: smiles | selfies; None (the default) takes a ``--model``'s own (its vocab.json), else
    DEFAULT_REPRESENTATION. ``data_dir``: prepared MOSES data (default $MDSAMPLE_DATA/molecule)."""

    representation: str | None = None
    data_dir: str | None = None
