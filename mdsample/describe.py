"""How a plugin describes what it registers without importing it: names, descriptions and option schemas.

``mdsample --help``, ``mdsample list`` and every argument or config error must answer before torch, transformers,
diffusers or rdkit are imported (each costs seconds). So a plugin's ``register_domains`` / ``register_samplers``
hook registers a ``DomainInfo`` / ``SamplerInfo``: plain data plus the options dataclass (defined in a module that
imports nothing heavy) and a ``"module:attribute"`` reference that the plugin manager imports only when a run
needs the real object. Registering a Domain instance or a Rule class directly still works; it just makes every
command pay for that plugin's imports. ``mdsample.testing`` checks that a description matches what it loads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from mdsample.options import DomainOptions

Loader = str | Callable[[], Any]


@dataclass(frozen=True)
class DomainInfo:
    """A domain as its plugin describes it.

    ``load`` names a zero-argument factory (usually the Domain class) as ``"module:attribute"``, or is one.
    ``options`` is the domain's ``Options`` dataclass, ``defaults`` what its ``defaults()`` returns, ``tasks`` what
    its ``tasks()`` returns: the config is resolved and checked against these before the domain is imported.
    """

    name: str
    description: str
    load: Loader
    options: type = DomainOptions
    defaults: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ("unconditional",)

    @classmethod
    def of(cls, domain: Any) -> DomainInfo:
        """The description of an already built Domain instance (a plugin that registered one directly)."""
        return cls(domain.name, domain.description, lambda: domain, domain.Options, dict(domain.defaults() or {}),
                   tuple(domain.tasks()))

    def build(self) -> Any:
        """The Domain instance (imports the plugin's domain module now)."""
        return resolve(self.load)()


@dataclass(frozen=True)
class SamplerInfo:
    """A selection rule as its plugin describes it: ``load`` names the Rule class (or is a zero-argument function
    returning it) and ``config`` is its ``Config`` dataclass, which must be importable without torch."""

    name: str
    description: str
    load: Loader
    config: type

    @classmethod
    def of(cls, rule: type) -> SamplerInfo:
        """The description of an already imported Rule class (a plugin that registered one directly)."""
        doc = (rule.__doc__ or "").strip()
        return cls(rule.name, doc.splitlines()[0] if doc else "", lambda: rule, rule.Config)

    def build(self) -> Any:
        """The Rule class (imports the rule's module now)."""
        return resolve(self.load) if isinstance(self.load, str) else self.load()


def resolve(load: Loader) -> Any:
    """The attribute ``"module:attribute"`` names (imported now); a callable ``load`` is returned as it is."""
    if not isinstance(load, str):
        return load
    module, _, attribute = load.partition(":")
    target: Any = import_module(module)
    for part in attribute.split(".") if attribute else ():
        target = getattr(target, part)
    return target


def _fields(options: type) -> list[tuple[str, Any]]:
    """(name, default) of each field of a dataclass (a default factory is called), in order."""
    out = []
    for f in dataclasses.fields(options):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out.append((f.name, default))
    return out


def domain_mismatches(info: DomainInfo, domain: Any) -> list[str]:
    """How the description ``info`` differs from the loaded ``domain`` (empty when it describes it faithfully)."""
    found = []
    for what, said, actual in (("name", info.name, domain.name), ("description", info.description, domain.description),
                               ("tasks", tuple(info.tasks), tuple(domain.tasks())),
                               ("defaults", dict(info.defaults), dict(domain.defaults() or {})),
                               ("options", _fields(info.options), _fields(domain.Options))):
        if said != actual:
            found.append(f"{what}: described {said!r}, loaded {actual!r}")
    return found


def sampler_mismatches(info: SamplerInfo, rule: type) -> list[str]:
    """How the description ``info`` differs from the loaded Rule class (empty when it describes it faithfully)."""
    found = []
    for what, said, actual in (("name", info.name, rule.name), ("config", _fields(info.config), _fields(rule.Config))):
        if said != actual:
            found.append(f"{what}: described {said!r}, loaded {actual!r}")
    return found
