"""The canvas of a ``--model`` text run: left-padded prompts followed by ``gen_length`` mask slots.

Left padding puts every row's generation region at the same columns, so one ``gen_start`` and one block tiling
serve the whole batch. The attention mask spans the full canvas (prompt + generation), batch first, because the
decode loop subsets every conditioning tensor to the active rows and hands it to the denoiser as is.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mdsample.errors import ConfigError


class Canvas(NamedTuple):
    """``tokens[B, P + G]``, ``attention_mask[B, P + G]`` (1 = real token) and the first generated column ``P``."""

    tokens: torch.Tensor
    attention_mask: torch.Tensor
    gen_start: int

    def conditioning(self) -> dict[str, torch.Tensor]:
        """The denoiser's conditioning: the attention mask when some row is padded, else nothing.

        Without padding the mask is all ones and only costs the model its fastest attention kernel.
        """
        if bool((self.attention_mask == 0).any()):
            return {"attention_mask": self.attention_mask}
        return {}


def build_canvas(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, gen_length: int, mask_id: int) -> Canvas:
    """Append ``gen_length`` mask ids (attention 1) to left-padded prompts ``[B, P]`` and their mask ``[B, P]``."""
    if gen_length < 1:
        raise ConfigError(f"gen_length must be >= 1, got {gen_length}")
    if prompt_ids.shape != prompt_mask.shape or prompt_ids.dim() != 2:
        raise ConfigError(f"prompt ids {tuple(prompt_ids.shape)} and mask {tuple(prompt_mask.shape)} must both be "
                          "[batch, prompt_length]")
    batch, plen = prompt_ids.shape
    device = prompt_ids.device
    tail = torch.full((batch, gen_length), mask_id, dtype=prompt_ids.dtype, device=device)
    ones = torch.ones(batch, gen_length, dtype=prompt_mask.dtype, device=device)
    return Canvas(torch.cat([prompt_ids, tail], dim=1), torch.cat([prompt_mask, ones], dim=1), plen)
