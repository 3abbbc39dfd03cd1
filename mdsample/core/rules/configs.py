"""The config dataclass of every built-in rule, in one module without torch.

The samplers plugin describes each rule with its config (mdsample.describe.SamplerInfo), and the CLI checks
``sampler.*`` options against it before torch is imported; each rule module imports its config from here. A
config validates its own values in ``__post_init__``, so a bad value is reported without building the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.errors import ConfigError, UnknownChoiceError

KLASS_STRATEGIES = ("all", "max_conf", "min_kl", "random")
THRESHOLD_FLOORS = ("one", "schedule")


@dataclass
class NoOptions:
    """Rules without options use this empty config."""


@dataclass
class KLASSConfig:
    conf_threshold: float = 0.9
    kl_threshold: float = 0.01
    history: int = 2
    unmask_strategy: str = "all"

    def __post_init__(self) -> None:
        if self.unmask_strategy not in KLASS_STRATEGIES:
            raise UnknownChoiceError("sampler.unmask_strategy", self.unmask_strategy, KLASS_STRATEGIES)
        if self.history < 1:
            raise ConfigError(f"sampler.history must be >= 1, got {self.history}")


@dataclass
class MEDConfig:
    entropy_threshold: float = 0.2
    k_max: int = 16


@dataclass
class ARMEDConfig:
    entropy_threshold: float = 0.2
    k_max: int = 16


@dataclass
class EBConfig:
    gamma: float = 0.1
    k_max: int = 0


@dataclass
class MaskGITConfig:
    choice_temperature: float = 4.5


@dataclass
class ThresholdConfig:
    """``floor``: "one" commits at least the most confident position (Fast-dLLM); "schedule" at least the
    schedule's k (diffusers' BlockRefinementScheduler, as LLaDA2 runs it)."""

    threshold: float = 0.9
    floor: str = "one"

    def __post_init__(self) -> None:
        if self.floor not in THRESHOLD_FLOORS:
            raise UnknownChoiceError("sampler.floor", self.floor, THRESHOLD_FLOORS)
