"""The molecule plugin: registers the ``molecule`` domain and the ``data`` command through mdsample's hooks.

It describes the domain (mdsample.describe.DomainInfo) without importing it, so ``mdsample list`` and config errors
do not pay for torch and rdkit; ``mdsample.testing`` checks that this description matches the loaded domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.describe import DomainInfo
from mdsample.hookspecs import hookimpl
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


@hookimpl
def register_domains(register):
    register(DomainInfo("molecule", DESCRIPTION, "mdsample.plugins.molecule.domain:MoleculeDomain", MoleculeOptions,
                        DEFAULTS, TASKS))


@hookimpl
def register_commands(register):
    register("data", DATA_HELP, "mdsample.plugins.molecule.command:configure", "mdsample.plugins.molecule.command:run")
