"""The molecule plugin: registers the ``molecule`` domain and the ``data`` command through mdsample's hooks."""

from __future__ import annotations

from mdsample.hookspecs import hookimpl


@hookimpl
def register_domains(register):
    from mdsample.plugins.molecule.domain import MoleculeDomain

    register(MoleculeDomain())


@hookimpl
def register_commands(register):
    from mdsample.plugins.molecule import command

    register("data", command.HELP, command.configure, command.run)
