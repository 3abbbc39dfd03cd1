"""Prompts of the DNA domain: IUPAC-style templates where ``N`` is a slot to fill and A/C/G/T are kept.

``--prompt NNNNNNTATAAANNN`` asks for sequences with a TATA box at position 6; a template shorter than the canvas is
padded with ``N`` on the right, so ``--prompt GAATTC`` fixes the 5' end. Kept bases are frozen positions of the
canvas: the decode loop never changes them, which is what makes infilling exact.
"""

from __future__ import annotations

import torch

from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample_dna import alphabet


def canvas(template: str | None, length: int, n: int, device: torch.device) -> MaskedState:
    """``n`` canvases of ``length`` slots for ``template`` (None: every slot masked)."""
    template = (template or "").upper()
    if len(template) > length:
        raise ConfigError(f"DNA prompt has {len(template)} characters but the canvas has {length}; shorten it")
    ids = torch.tensor(alphabet.encode(template.ljust(length, "N")), dtype=torch.long, device=device)
    slots = ids == alphabet.PAD_ID
    if not slots.any():
        raise ConfigError(f"DNA prompt {template!r} leaves nothing to generate; mark the slots to fill with N")
    row = torch.where(slots, torch.full_like(ids, alphabet.MASK_ID), ids)
    return MaskedState(row.expand(n, length).clone(), alphabet.MASK_ID, frozen=(~slots).expand(n, length).clone())
