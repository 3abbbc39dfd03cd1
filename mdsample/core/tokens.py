"""Token choice: which token a position would take if committed (argmax, temperature, top-k, top-p).

This is deliberately separate from position choice (the rules): LLaDA, MaskGIT and Fast-dLLM all draw the
candidate token x0 first and decide afterwards which positions keep it. Sampling uses the Gumbel-max trick with
an explicit torch.Generator so that a seed fixes the output on a given device and batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mdsample.errors import ConfigError


@dataclass(frozen=True)
class TokenChooser:
    """Temperature 0 means argmax (deterministic); top_k 0 and top_p 1.0 disable those filters."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ConfigError(f"decode.temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"decode.top_k must be >= 0 (0 disables it), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"decode.top_p must lie in (0, 1], got {self.top_p}")

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Token ids [..] for logits [.., V]."""
        if self.temperature == 0.0:
            return logits.argmax(dim=-1)
        scores = logits.float() / self.temperature
        if self.top_k > 0 and self.top_k < scores.shape[-1]:
            kth = scores.topk(self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            scores = _nucleus(scores, self.top_p)
        uniform = torch.rand(scores.shape, generator=generator, device=scores.device)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        return (scores + gumbel).argmax(dim=-1)


def _nucleus(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probability mass reaches top_p (the top token always stays)."""
    sorted_scores, order = scores.sort(dim=-1, descending=True)
    cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = (cum - sorted_scores.softmax(dim=-1)) >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))
