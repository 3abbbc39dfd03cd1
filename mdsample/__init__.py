"""mdsample: sampling from masked diffusion models with pluggable selection rules and domains.

The public Python API. Names are imported on first use (PEP 562) so that ``import mdsample.errors`` or the core
does not pull in the plugin machinery, and the core never imports its own package's front end.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("mdsample")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

_EXPORTS = {
    "sample": "mdsample.api",
    "RunResult": "mdsample.api",
    "load_domain": "mdsample.plugin_manager",
    "available_samplers": "mdsample.plugin_manager",
    "available_domains": "mdsample.plugin_manager",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mdsample' has no attribute {name!r}")
