"""Domain-agnostic sampling core: masked state, denoiser protocol, selection rules, schedules and the decode loop.

The core depends on no plugin package: domains depend on the core, never the reverse.
"""

from mdsample.core.denoiser import Denoiser
from mdsample.core.loop import DecodeResult, decode
from mdsample.core.rules import Rule, StepContext
from mdsample.core.schedule import BlockSchedule
from mdsample.core.state import MaskedState
from mdsample.core.stats import StepStats
from mdsample.core.tokens import TokenChooser

__all__ = [
    "BlockSchedule",
    "DecodeResult",
    "Denoiser",
    "MaskedState",
    "Rule",
    "StepContext",
    "StepStats",
    "TokenChooser",
    "decode",
]
