"""Selection rules: one small class per file, all batched. BUILTIN_RULES maps each name to its class.

Names are imported on first use (PEP 562), so that ``rules.configs`` (every rule's config, no torch) can be read
without importing the rules themselves.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

BUILTIN = {  # name -> "module:class", in the order `mdsample list` shows them
    "klass": "mdsample.core.rules.klass:KLASS",
    "med": "mdsample.core.rules.med:MED",
    "ar_med": "mdsample.core.rules.ar_med:ARMED",
    "eb": "mdsample.core.rules.eb:EntropyBounded",
    "confidence": "mdsample.core.rules.confidence:Confidence",
    "margin": "mdsample.core.rules.margin:Margin",
    "entropy": "mdsample.core.rules.entropy:Entropy",
    "random": "mdsample.core.rules.random:Random",
    "maskgit": "mdsample.core.rules.maskgit:MaskGIT",
    "threshold": "mdsample.core.rules.threshold:Threshold",
}
_BASE = ("Rule", "StepContext", "ensure_progress", "top_k_mask")

__all__ = ["BUILTIN", "BUILTIN_RULES", *_BASE]


def _load(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(import_module(module), name)


def __getattr__(name: str) -> Any:
    if name == "BUILTIN_RULES":
        rules = {rule_name: _load(reference) for rule_name, reference in BUILTIN.items()}
        globals()["BUILTIN_RULES"] = rules
        return rules
    if name in _BASE:
        return getattr(import_module("mdsample.core.rules.base"), name)
    raise AttributeError(f"module 'mdsample.core.rules' has no attribute {name!r}")
