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


@dataclass
class MoleculeOptions(DomainOptions):
    """``representation``: smiles | selfies. ``data_dir``: prepared MOSES data (default $MDSAMPLE_DATA/molecule)."""

    representation: str = "smiles"
    data_dir: str | None = None
