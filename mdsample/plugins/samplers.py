"""The built-in plugin that contributes every selection rule of ``mdsample.core.rules`` as a sampler.

It is an ordinary entry-point plugin (``samplers = "mdsample.plugins.samplers"``), so pinning it out with
``MDSAMPLE_PLUGINS`` leaves no samplers at all, exactly as for a third-party plugin.
"""

from __future__ import annotations

from mdsample.core.rules import BUILTIN_RULES
from mdsample.hookspecs import hookimpl


@hookimpl
def register_samplers(register):
    for rule in BUILTIN_RULES.values():
        register(rule)
