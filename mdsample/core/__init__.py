"""Domain-agnostic sampling core: masked state, denoiser protocol, selection rules, schedules, the decode loop, and
the block-diffusion outer loop with DiffusionGemma's accept-and-renoise sampler.

The core depends on no plugin package: domains depend on the core, never the reverse.
"""

from mdsample.core.blocks import BlockDenoiser, decode_blocks
from mdsample.core.denoiser import Denoiser
from mdsample.core.loop import DecodeResult, Editing, decode
from mdsample.core.reselect import Reselect, refine
from mdsample.core.rules import Rule, StepContext
from mdsample.core.schedule import BlockSchedule
from mdsample.core.state import MaskedState
from mdsample.core.stats import StepStats
from mdsample.core.tokens import TokenChooser

__all__ = [
    "BlockDenoiser",
    "BlockSchedule",
    "DecodeResult",
    "Denoiser",
    "Editing",
    "MaskedState",
    "Reselect",
    "Rule",
    "StepContext",
    "StepStats",
    "TokenChooser",
    "decode",
    "decode_blocks",
    "refine",
]
