"""The text plugin: registers the ``text`` domain through mdsample's hooks, as a third-party plugin would."""

from __future__ import annotations

from mdsample.hookspecs import hookimpl


@hookimpl
def register_domains(register):
    from mdsample.plugins.text.domain import TextDomain

    register(TextDomain())


@hookimpl
def register_commands(register):
    from mdsample.plugins.text import posterior

    register("posterior", posterior.HELP, posterior.configure, posterior.run)
