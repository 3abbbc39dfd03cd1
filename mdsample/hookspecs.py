"""Every pluggy hook of mdsample. A plugin is a module with ``@hookimpl`` functions of these names.

Each hook receives a ``register`` callback instead of returning a list, so a plugin registers as many things as it
likes, and the plugin manager knows which plugin registered what (``mdsample list`` shows it). Hooks are called
lazily, once per process, the first time the matching registry is needed; a hook that raises is reported by plugin
name and its registrations are dropped, never taking the CLI down.
"""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("mdsample")
hookimpl = HookimplMarker("mdsample")


@hookspec
def register_domains(register):
    """Called when domains are first needed; ``register(info)`` takes a ``mdsample.describe.DomainInfo``.

    A DomainInfo names, describes and gives the options schema of the domain without importing it (the domain is
    imported when a run needs it). A Domain instance is accepted too, at the price of importing it on every command.
    """


@hookspec
def register_samplers(register):
    """Called when samplers are first needed; ``register(info)`` takes a ``mdsample.describe.SamplerInfo``.

    As for domains, a Rule subclass is accepted too, at the price of importing it (and torch) on every command.
    """


@hookspec
def register_metrics(register):
    """Called before metrics are computed; ``register(name, fn)`` with ``fn(objects, domain) -> float | None``.

    Every registered metric runs after the domain's own metrics on every run; returning None means "not applicable
    to this domain" and the metric is left out of metrics.json.
    """


@hookspec
def register_commands(register):
    """Called when the CLI starts; ``register(name, help, configure, run)`` adds the subcommand ``mdsample NAME``.

    ``configure(parser: argparse.ArgumentParser) -> None`` adds its arguments (``--debug`` is already there);
    ``run(args: argparse.Namespace) -> int`` does the work and returns 0 (any other code is reported as the
    command's failure, exit 2; raise an MdsampleError to say why in one line). Either may be given as a
    ``"module:attribute"`` name, imported only when the command runs.
    """
