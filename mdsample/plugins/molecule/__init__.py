"""The molecule plugin: registers the ``molecule`` domain and the ``data`` command through mdsample's hooks.

It describes the domain (mdsample.describe.DomainInfo) without importing it, so ``mdsample list`` and config errors
do not pay for torch and rdkit; ``mdsample.testing`` checks that this description matches the loaded domain.
"""

from __future__ import annotations

from mdsample.describe import DomainInfo
from mdsample.hookspecs import hookimpl
from mdsample.plugins.molecule.options import DATA_HELP, DEFAULTS, DESCRIPTION, TASKS, MoleculeOptions


@hookimpl
def register_domains(register):
    register(DomainInfo("molecule", DESCRIPTION, "mdsample.plugins.molecule.domain:MoleculeDomain", MoleculeOptions,
                        DEFAULTS, TASKS))


@hookimpl
def register_commands(register):
    register("data", DATA_HELP, "mdsample.plugins.molecule.command:configure", "mdsample.plugins.molecule.command:run")
