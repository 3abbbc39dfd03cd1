"""The Domain contract: what a modality plugin supplies to the domain-agnostic core.

A domain plugin registers one Domain instance per modality through the ``register_domains`` hook. The CLI, the
Python API and the studies only ever talk to domains through this class, so a third-party modality is a peer of
the built-in text, image and molecule domains.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from mdsample.core.denoiser import Denoiser
from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.options import DomainOptions

__all__ = ["Domain", "DomainOptions", "Initial", "TrainData"]

if TYPE_CHECKING:
    from mdsample.train import TrainConfig


@dataclass
class Initial:
    """What ``Domain.initial_state`` returns: the canvases, the conditioning tensors, and per-row request data.

    ``answer[B, A]`` holds the answer-slot positions of reasoning-as-infilling templates (core/infill.py); domains
    that set it support answer-block early exit (``decode.early_exit``).
    """

    state: MaskedState
    conditioning: dict[str, torch.Tensor] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answer: torch.Tensor | None = None


@dataclass
class TrainData:
    """A domain's training corpus as fixed-length token rows, ready for the MDLM objective.

    ``frozen_prefix`` positions (e.g. BOS) are never masked during training, matching how the domain builds
    canvases for sampling.
    """

    train: torch.Tensor
    val: torch.Tensor
    vocab_size: int
    mask_id: int
    pad_id: int
    frozen_prefix: int = 0


class Domain(abc.ABC):
    """One modality: its denoiser, its canvases, its objects, its metrics and its tasks."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[DomainOptions]] = DomainOptions

    def defaults(self) -> dict[str, Any]:
        """Config defaults this domain sets: ``{"decode": {...}, "samplers": {rule_name: {...}}, "n": ...}``."""
        return {}

    def tasks(self) -> list[str]:
        """Names of the tasks this domain offers for studies (first one is the default)."""
        return ["unconditional"]

    @abc.abstractmethod
    def load_denoiser(self, options: DomainOptions, device: torch.device) -> Denoiser:
        """Build or load the denoiser: the shipped house model when ``options.model`` is None."""

    @abc.abstractmethod
    def initial_state(
        self, denoiser: Denoiser, options: DomainOptions, n: int, device: torch.device, offset: int = 0
    ) -> Initial:
        """``n`` canvases for the request in ``options`` (unconditional, prompted, infill template, ...).

        ``offset`` is the index of this batch's first sample in the run: a domain that draws from a list of problems
        serves samples ``offset .. offset + n - 1``, so batches (and processes sharing a run) never repeat one.
        """

    @abc.abstractmethod
    def decode(self, tokens: torch.Tensor, initial: Initial) -> list[Any]:
        """Turn finished canvases back into domain objects (strings, images, SMILES); one object per row."""

    @abc.abstractmethod
    def save(self, objects: list[Any], run_dir: Path, initial: Initial) -> list[Path]:
        """Write the objects into ``run_dir`` (jsonl / png grid / .smi) and return the paths written."""

    @abc.abstractmethod
    def metrics(self, objects: list[Any], options: DomainOptions, initial: Initial) -> dict[str, float]:
        """The domain's metrics on a batch of outputs; defined values (or NaN) for empty or invalid sets."""

    def train_data(self, options: DomainOptions) -> TrainData:
        """The corpus ``mdsample train --domain NAME`` fits the house model on."""
        raise ConfigError(f"domain {self.name!r} has no training corpus")

    def train_house(self, options: DomainOptions, cfg: TrainConfig, out_dir: Path, command: str = "") -> Path:
        """What ``mdsample train --domain NAME`` runs; returns the model directory.

        The default fits the ModernBERT house denoiser on ``train_data`` with the generic MDLM trainer. A domain whose
        model has more than one stage (an image tokenizer before its token transformer) overrides this and still
        calls ``mdsample.train.train`` for its token model, so every domain trains through the same objective.
        """
        from mdsample.train import train

        return train(self, options, cfg, out_dir, command=command)

    def save_assets(self, options: DomainOptions, model_dir: Path) -> None:
        """Write what a trained model needs beside its weights (e.g. the tokenizer's vocabulary)."""
