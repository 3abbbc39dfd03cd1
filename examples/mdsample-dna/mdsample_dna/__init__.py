"""mdsample-dna: an example third-party plugin for mdsample, adding the ``dna`` domain and the ``spaced`` rule.

mdsample finds this module through the entry point ``dna = "mdsample_dna"`` of the ``mdsample`` group (see this
distribution's pyproject.toml); nothing in mdsample itself names it. Imports of the domain and the rule happen
when a run needs them: the hooks register descriptions (names, descriptions, option schemas from options.py,
which imports no torch), so ``mdsample list`` and config errors stay fast, and a problem in the domain or the rule
is reported against this plugin by name.
"""

from __future__ import annotations

from mdsample.describe import DomainInfo, SamplerInfo
from mdsample.hookspecs import hookimpl
from mdsample_dna import options


@hookimpl
def register_domains(register):
    register(DomainInfo("dna", options.DESCRIPTION, "mdsample_dna.domain:DnaDomain", options.DnaOptions,
                        options.DEFAULTS, options.TASKS))


@hookimpl
def register_samplers(register):
    register(SamplerInfo("spaced", options.SPACED_DESCRIPTION, "mdsample_dna.spaced:Spaced", options.SpacedConfig))
