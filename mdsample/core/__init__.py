"""Domain-agnostic sampling core: masked state, denoiser protocol, selection rules, schedules, the decode loop, and
corrector steps,
the block-diffusion outer loop with DiffusionGemma's accept-and-renoise sampler.

The core depends on no plugin package: domains depend on the core, never the reverse. Names are imported on first
use (PEP 562), so that the torch-free modules (``choices``, ``rules.configs``) can be read without importing torch.
"""

from __future__ import annotations

from mdsample.lazy import exports

_EXPORTS = {
    "BlockDenoiser": "mdsample.core.blocks",
    "BlockSchedule": "mdsample.core.schedule",
    "Corrector": "mdsample.core.corrector",
    "DecodeResult": "mdsample.core.loop",
    "Denoiser": "mdsample.core.denoiser",
    "Editing": "mdsample.core.loop",
    "MaskedState": "mdsample.core.state",
    "Reselect": "mdsample.core.reselect",
    "Rule": "mdsample.core.rules",
    "StepContext": "mdsample.core.rules",
    "StepStats": "mdsample.core.stats",
    "TokenChooser": "mdsample.core.tokens",
    "correct": "mdsample.core.corrector",
    "decode": "mdsample.core.loop",
    "decode_blocks": "mdsample.core.blocks",
    "refine": "mdsample.core.reselect",
    "use_compile": "mdsample.core.compile",
}

__all__ = sorted(_EXPORTS)


__getattr__ = exports("mdsample.core", _EXPORTS)
