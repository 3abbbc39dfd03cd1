"""MaskedState: the batched canvas a masked diffusion model fills in, and the bookkeeping decode() keeps on it.

One object holds everything that is per-row or per-position so that the loop, the rules' callers and the domains
agree on a single source of truth: which positions are not yet committed, which may never change (prompt, template,
user constraints), where generation starts, which rows are finished, how many denoiser calls each row cost and
at which step each position was committed (for decode-order traces).

Uncommitted positions come in two corruption modes (CORRUPTIONS). Under "absorbing" (LLaDA, Dream, MDLM) they hold
the mask token, so the canvas itself says what is committed. Under "uniform" (DiffusionGemma, diffusers' uniform
mode) they hold tokens re-drawn at every step, which look like any other token, so the state keeps an explicit
``uncommitted`` flag per position. ``masked`` means "not yet committed" in both modes; rules never see the mask id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mdsample.errors import ConfigError

CORRUPTIONS = ("absorbing", "uniform")
"""absorbing: uncommitted positions hold the mask token; uniform: they hold random tokens, re-drawn every step."""


@dataclass
class MaskedState:
    """Batched canvas ``tokens[B, L]`` with mask id ``mask_id``.

    ``gen_start`` is the first position of the generation region (everything before it is the prompt, frozen);
    semi-autoregressive blocks tile ``[gen_start, L)``. ``frozen[B, L]`` marks positions that must never change,
    prompt included; a frozen position is never masked. Under ``corruption="uniform"`` ``uncommitted[B, L]`` says
    which positions still hold noise (default: every position of the generation region that is not frozen) and
    ``mask_id`` is only a placeholder (-1: the model has no mask token).
    """

    tokens: torch.Tensor
    mask_id: int
    gen_start: int = 0
    frozen: torch.Tensor | None = None
    corruption: str = "absorbing"
    uncommitted: torch.Tensor | None = None
    finished: torch.Tensor = field(init=False)
    exited: torch.Tensor = field(init=False)
    nfe: torch.Tensor = field(init=False)
    wall_s: torch.Tensor = field(init=False)
    commit_step: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        if self.tokens.dim() != 2:
            raise ConfigError(f"canvas must be 2-D [batch, length], got shape {tuple(self.tokens.shape)}")
        b, length = self.tokens.shape
        if not 0 <= self.gen_start < length:
            raise ConfigError(f"gen_start={self.gen_start} must lie inside the canvas of length {length}")
        device = self.tokens.device
        prompt = torch.zeros(b, length, dtype=torch.bool, device=device)
        prompt[:, : self.gen_start] = True
        self.frozen = prompt if self.frozen is None else (self.frozen.to(device=device, dtype=torch.bool) | prompt)
        if self.corruption not in CORRUPTIONS:
            raise ConfigError(f"corruption={self.corruption!r} is unknown; choose one of: {', '.join(CORRUPTIONS)}")
        if self.corruption == "uniform":
            default = ~self.frozen
            self.uncommitted = default if self.uncommitted is None else self.uncommitted.to(device).bool() & default
        elif self.uncommitted is not None:
            raise ConfigError("an absorbing canvas marks uncommitted positions with the mask token, not a flag")
        elif (self.frozen & (self.tokens == self.mask_id)).any():
            raise ConfigError("a frozen (prompt or constrained) position holds the mask token; give it a real token")
        self.finished = ~self.masked.any(dim=1)
        self.exited = torch.zeros(b, dtype=torch.bool, device=device)
        self.nfe = torch.zeros(b, dtype=torch.long, device=device)
        self.wall_s = torch.zeros(b, dtype=torch.float64)
        self.commit_step = torch.full((b, length), -1, dtype=torch.long, device=device)

    @classmethod
    def blank(
        cls,
        batch: int,
        gen_length: int,
        mask_id: int,
        prompt: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
        *,
        corruption: str = "absorbing",
        vocab_size: int = 0,
        generator: torch.Generator | None = None,
    ) -> MaskedState:
        """A canvas of ``batch`` rows: the (shared or per-row) prompt followed by ``gen_length`` uncommitted slots
        (mask tokens, or under uniform corruption tokens drawn uniformly from ``vocab_size`` with ``generator``)."""
        if gen_length < 1:
            raise ConfigError(f"gen_length must be >= 1, got {gen_length}")
        plen = 0 if prompt is None else prompt.shape[-1]
        tokens = torch.full((batch, plen + gen_length), mask_id, dtype=torch.long, device=device)
        if corruption == "uniform":
            tokens[:, plen:] = noise((batch, gen_length), vocab_size, tokens.device, generator)
        if prompt is not None:
            tokens[:, :plen] = prompt.to(device).expand(batch, plen)
        return cls(tokens=tokens, mask_id=mask_id, gen_start=plen, corruption=corruption)

    @property
    def batch(self) -> int:
        return self.tokens.shape[0]

    @property
    def length(self) -> int:
        return self.tokens.shape[1]

    @property
    def gen_length(self) -> int:
        return self.length - self.gen_start

    @property
    def masked(self) -> torch.Tensor:
        """Bool [B, L]: positions not yet committed (holding the mask token, or noise under uniform corruption)."""
        if self.corruption == "uniform":
            return self.uncommitted
        return self.tokens == self.mask_id

    @property
    def uniform(self) -> bool:
        return self.corruption == "uniform"

    def generated(self) -> torch.Tensor:
        """The generation region ``tokens[:, gen_start:]``."""
        return self.tokens[:, self.gen_start :]


def noise(shape: tuple[int, ...], vocab_size: int, device: torch.device,
          generator: torch.Generator | None) -> torch.Tensor:
    """Uniform corruption's noise: token ids drawn uniformly from ``[0, vocab_size)`` (one ``randint`` call, so a
    loop that draws the same shapes in the same order as another sampler reproduces its draws)."""
    if vocab_size < 1:
        raise ConfigError("uniform corruption needs the model's vocabulary size to draw noise tokens")
    return torch.randint(0, vocab_size, shape, device=device, generator=generator)
