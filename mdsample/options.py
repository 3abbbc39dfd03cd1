"""The options every domain understands, in a module that imports nothing heavy.

A plugin describes its domain (``mdsample.describe.DomainInfo``) with its ``Options`` dataclass, and the CLI checks
a config against it before torch or the domain's libraries are imported; so this base class, and each domain's
subclass of it, live in modules that import neither.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DomainOptions:
    """Options every domain understands; a domain's own ``Options`` dataclass subclasses it.

    ``model`` is None for the shipped house model, else a hub id or a local path. ``prompt`` is the domain's
    template syntax for conditioning/infilling (documented by each domain). ``task`` names one of ``tasks()``.
    ``label`` is the class of class-conditional domains (``--class A``); domains without classes reject it.
    """

    model: str | None = None
    prompt: str | None = None
    task: str | None = None
    label: str | None = None
    trust_remote_code: bool = False
