"""The hyper-parameters of ``mdsample train``, in a module without torch so that the CLI checks them at once."""

from __future__ import annotations

from dataclasses import dataclass

from mdsample.errors import ConfigError, UnknownChoiceError

NOISE_SCHEDULES = ("linear", "cosine")
"""``train.noise_schedule`` choices (models/mdlm.py, ``schedule_terms``)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of ``train``. ``dtype`` "bf16" means bf16 autocast on CUDA; CPU always runs float32.

    ``max_minutes`` counts from the first step (torch.compile's warm-up included); the final evaluation and the save
    come on top and take seconds, so leave a little margin under a hard job limit. The cosine schedule is laid out
    over ``steps``, so pick ``steps`` that fit the budget (H100, "small", batch 512, L=64: ~110 steps/s compiled,
    ~60 eager) rather than relying on the time limit. ``init`` continues from a house checkpoint (fine-tuning, e.g.
    on posterior traces) instead of fresh weights; it must fit the domain's vocabulary and layout.

    A resumable checkpoint (``checkpoint.safetensors`` in the run directory: weights, optimizer, step, random
    states, best validation weights, log position) is written atomically every ``checkpoint_steps`` steps and every
    ``checkpoint_minutes`` minutes (0 / None: off), and removed once the model is saved. ``resume`` continues from
    it (``mdsample train --resume RUN_DIR``) to the same final weights as an uninterrupted run.

    ``noise_schedule`` is the forward process the training batches are drawn from (the validation loss always uses
    the linear one, so runs with different schedules compare on the same estimator of the same bound).
    """

    def __post_init__(self) -> None:
        if self.dtype not in ("bf16", "fp32"):
            raise UnknownChoiceError("train.dtype", self.dtype, ("bf16", "fp32"))
        if self.noise_schedule not in NOISE_SCHEDULES:
            raise UnknownChoiceError("train.noise_schedule", self.noise_schedule, NOISE_SCHEDULES)
        for key in ("steps", "batch_size", "eval_every", "eval_batches", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if self.checkpoint_steps < 0:
            raise ConfigError(f"train.checkpoint_steps must be >= 0 (0: off), got {self.checkpoint_steps}")

    size: str = "small"
    steps: int = 20000
    batch_size: int = 512
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = 1000
    eval_batches: int = 20
    seed: int = 0
    device: str = "auto"
    dtype: str = "bf16"
    compile: bool = False
    log_every: int = 100
    max_minutes: float | None = None
    init: str | None = None
    checkpoint_steps: int = 1000
    checkpoint_minutes: float | None = 10.0
    resume: bool = False
    noise_schedule: str = "linear"
