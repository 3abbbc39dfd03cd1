"""Package attributes imported on first use (PEP 562), so that a package's torch-free parts load without torch.

``mdsample.core`` and ``mdsample.study`` both export names from heavy modules; ``exports`` gives each package the
``__getattr__`` that imports a name's module only when the name is first read.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """The module-level ``__getattr__`` of ``package`` for ``names`` (attribute -> defining module)."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
