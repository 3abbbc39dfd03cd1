"""mdsample-dna: an example third-party plugin for mdsample, adding the ``dna`` domain and the ``spaced`` rule.

mdsample finds this module through the entry point ``dna = "mdsample_dna"`` of the ``mdsample`` group (see this
distribution's pyproject.toml); nothing in mdsample itself names it. Imports of the domain and the rule happen
inside the hooks, so ``mdsample list`` stays fast and a problem in them is reported against this plugin by name.
"""

from __future__ import annotations

from mdsample.hookspecs import hookimpl


@hookimpl
def register_domains(register):
    from mdsample_dna.domain import DnaDomain

    register(DnaDomain())


@hookimpl
def register_samplers(register):
    from mdsample_dna.spaced import Spaced

    register(Spaced)
