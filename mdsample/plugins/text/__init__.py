"""The text plugin: registers the ``text`` domain through mdsample's hooks, as a third-party plugin would."""

from __future__ import annotations

from mdsample.describe import DomainInfo
from mdsample.hookspecs import hookimpl
from mdsample.plugins.text import options


@hookimpl
def register_domains(register):
    register(DomainInfo("text", options.DESCRIPTION, "mdsample.plugins.text.domain:TextDomain", options.TextOptions,
                        options.DEFAULTS, options.TASKS))


@hookimpl
def register_commands(register):
    from mdsample.plugins.text import posterior_command as command

    register("posterior", command.HELP, command.configure, command.run)
