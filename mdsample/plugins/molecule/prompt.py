"""Infill and prefix templates (``Options.prompt``): which canvas positions are given and which the model fills.

Syntax, in the tokens of the active representation (SMILES atoms, or SELFIES ``[...]`` symbols)::

    CC(=O)N{8}          exact: these tokens, then exactly 8 model-filled tokens, then EOS (length fixed)
    c1ccc({3})cc1       exact: a benzene ring with a 3-token substituent the model fills in
    prefix:CC(=O)N      prefix: these tokens first; the rest of the canvas (tokens, EOS, PAD) is the model's
    prefix:c1ccc{2}     prefix: masked slots may appear inside the given part too

``{k}`` (k >= 1) stands for k masked positions. Without ``prefix:`` the template is the whole molecule: EOS is
placed right after it and the PAD positions after EOS are frozen as well, so the model fills only the ``{k}`` slots.
With ``prefix:`` the model also decides the length. Every given token (and BOS) is frozen in
``MaskedState.frozen``, so no rule can change it. An empty or absent prompt means unconditional generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.plugins.molecule.tokenizers import Vocab

PREFIX = "prefix:"
_SLOTS = re.compile(r"\{(\d+)\}")


@dataclass(frozen=True)
class Template:
    """Content positions after BOS: a token id, or None for a masked slot; ``exact`` closes the molecule with EOS."""

    items: tuple[int | None, ...]
    exact: bool


def parse(prompt: str | None, vocab: Vocab) -> Template:
    """Parse a template (see module doc); ConfigError naming the offending piece when it is malformed."""
    text = (prompt or "").strip()
    exact = not text.startswith(PREFIX)
    if not exact:
        text = text[len(PREFIX) :].strip()
    if not text:
        return Template((), exact=False)
    index, items = vocab.index, []
    for i, piece in enumerate(_SLOTS.split(text)):
        if i % 2:
            if int(piece) < 1:
                raise ConfigError(f"prompt slot {{{piece}}} must hold at least one position")
            items.extend([None] * int(piece))
            continue
        tokens = vocab.split(piece) if piece else []
        if tokens is None or any(t not in index for t in tokens):
            bad = piece if tokens is None else next(t for t in tokens if t not in index)
            raise ConfigError(f"prompt piece {bad!r} is not made of {vocab.representation} tokens of the vocabulary")
        items.extend(index[t] for t in tokens)
    room = vocab.length - 2
    if len(items) > room:
        raise ConfigError(f"prompt spans {len(items)} tokens; the {vocab.representation} canvas holds at most {room}")
    return Template(tuple(items), exact)


def canvas(template: Template, vocab: Vocab, n: int, device: torch.device | str = "cpu") -> MaskedState:
    """``n`` identical canvases for ``template``: BOS, given tokens and (exact mode) EOS + PAD frozen."""
    length = vocab.length
    tokens = torch.full((length,), vocab.mask_id, dtype=torch.long)
    frozen = torch.zeros(length, dtype=torch.bool)
    tokens[0], frozen[0] = vocab.bos_id, True
    for pos, item in enumerate(template.items, start=1):
        if item is not None:
            tokens[pos], frozen[pos] = item, True
    if template.exact:
        end = len(template.items) + 1
        tokens[end], tokens[end + 1 :] = vocab.eos_id, vocab.pad_id
        frozen[end:] = True
    return MaskedState(
        tokens=tokens.expand(n, length).clone().to(device),
        mask_id=vocab.mask_id,
        gen_start=1,
        frozen=frozen.expand(n, length).clone().to(device),
    )
