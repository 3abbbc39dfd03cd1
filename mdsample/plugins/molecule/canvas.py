"""Fixed-length canvases ``[BOS] tokens [EOS] [PAD ...]`` and back.

Why this layout: a masked diffusion model fills a fixed-length canvas, so the molecule's length has to be something
the model chooses too. It does so by where it puts EOS; PAD fills the rest so that every position has a target in
training. BOS at position 0 is frozen (``gen_start = 1``) and is never masked in training (``frozen_prefix = 1``).

Decoding keeps what lies between BOS and the first EOS. A row without BOS at 0 or without EOS, or with a special
token (PAD, MASK, BOS, UNK) before its EOS, is ill-formed: it decodes to the raw text of the whole row, special
tokens spelled ``<bos>``, ``<pad>``..., which RDKit never parses, so it counts as invalid without any exception.
"""

from __future__ import annotations

from multiprocessing import get_context

import numpy as np
import selfies

from mdsample.plugins.molecule.tokenizers import SPECIALS, Vocab, smiles_to_selfies


def encode_tokens(tokens: list[str], vocab: Vocab) -> np.ndarray | None:
    """One canvas row (uint8 ids) for a token list, or None when it does not fit or has an unknown token."""
    if len(tokens) + 2 > vocab.length:
        return None
    index = vocab.index
    ids = [index.get(t, vocab.unk_id) for t in tokens]
    if vocab.unk_id in ids:
        return None
    row = np.full(vocab.length, vocab.pad_id, dtype=np.uint8)
    row[0], row[len(ids) + 1] = vocab.bos_id, vocab.eos_id
    row[1 : len(ids) + 1] = ids
    return row


def _text_of(smiles: str, representation: str) -> str | None:
    return smiles if representation == "smiles" else smiles_to_selfies(smiles)


class _Encoder:
    """Picklable SMILES -> row function for process pools."""

    def __init__(self, vocab: Vocab):
        self.vocab = vocab

    def __call__(self, smiles: str) -> np.ndarray | None:
        text = _text_of(smiles, self.vocab.representation)
        tokens = None if text is None else self.vocab.split(text)
        return None if tokens is None else encode_tokens(tokens, self.vocab)


def encode_smiles(smiles: list[str], vocab: Vocab, processes: int = 1) -> tuple[np.ndarray, int]:
    """Canvas rows ``uint8 [N_kept, L]`` for SMILES strings, and how many were dropped (too long / unencodable)."""
    encoder = _Encoder(vocab)
    if processes > 1 and len(smiles) > 10_000:
        with get_context("fork").Pool(processes) as pool:
            rows = pool.map(encoder, smiles, chunksize=4096)
    else:
        rows = [encoder(s) for s in smiles]
    kept = [r for r in rows if r is not None]
    array = np.stack(kept) if kept else np.zeros((0, vocab.length), dtype=np.uint8)
    return array, len(rows) - len(kept)


def decode_row(ids: list[int], vocab: Vocab) -> str:
    """SMILES of one canvas row (positions 1..), or its raw text when the row is ill-formed (see module doc)."""
    tokens = [vocab.tokens[i] if 0 <= i < len(vocab) else SPECIALS[4] for i in ids]
    body = tokens[1 : tokens.index(SPECIALS[2], 1)] if SPECIALS[2] in tokens[1:] else None
    if body is None or tokens[0] != SPECIALS[1] or any(t in SPECIALS for t in body):
        return "".join(tokens)
    text = "".join(body)
    if vocab.representation == "smiles":
        return text
    try:
        return selfies.decoder(text)
    except selfies.DecoderError:
        return text
