"""MaskedState: the batched canvas a masked diffusion model fills in, and the bookkeeping decode() keeps on it.

One object holds everything that is per-row or per-position so that the loop, the rules' callers and the domains
agree on a single source of truth: which positions are still masked, which may never change (prompt, template,
user constraints), where generation starts, which rows are finished, how many denoiser calls each row cost and
at which step each position was committed (for decode-order traces).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mdsample.errors import ConfigError


@dataclass
class MaskedState:
    """Batched canvas ``tokens[B, L]`` with mask id ``mask_id``.

    ``gen_start`` is the first position of the generation region (everything before it is the prompt, frozen);
    semi-autoregressive blocks tile ``[gen_start, L)``. ``frozen[B, L]`` marks positions that must never change,
    prompt included; a frozen position is never masked.
    """

    tokens: torch.Tensor
    mask_id: int
    gen_start: int = 0
    frozen: torch.Tensor | None = None
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
        if (self.frozen & (self.tokens == self.mask_id)).any():
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
    ) -> MaskedState:
        """A canvas of ``batch`` rows: the (shared or per-row) prompt followed by ``gen_length`` masked slots."""
        if gen_length < 1:
            raise ConfigError(f"gen_length must be >= 1, got {gen_length}")
        plen = 0 if prompt is None else prompt.shape[-1]
        tokens = torch.full((batch, plen + gen_length), mask_id, dtype=torch.long, device=device)
        if prompt is not None:
            tokens[:, :plen] = prompt.to(device).expand(batch, plen)
        return cls(tokens=tokens, mask_id=mask_id, gen_start=plen)

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
        """Bool [B, L]: positions still holding the mask token."""
        return self.tokens == self.mask_id

    def generated(self) -> torch.Tensor:
        """The generation region ``tokens[:, gen_start:]``."""
        return self.tokens[:, self.gen_start :]
