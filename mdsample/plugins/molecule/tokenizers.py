"""Token-level views of a molecule string: SMILES atoms (regex) and SELFIES symbols, over a shared vocabulary.

Why atom-level SMILES: a character model would split ``Cl`` into ``C`` + ``l`` and ``[nH]`` into five tokens, so the
denoiser would have to learn spelling before chemistry; one token per atom, bond, branch or ring label keeps the
canvas short and every token meaningful. SELFIES is offered because every symbol string decodes to a molecule, which
isolates how much of a sampler's invalidity comes from syntax.

The vocabulary is a fixed ordered list: the five special tokens first (``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2,
``<mask>`` 3, ``<unk>`` 4), then the representation's tokens as found in MOSES train. Special names use angle brackets
because ``<`` is neither a SMILES nor a SELFIES character, so a decoded row that still holds one can never parse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import selfies

from mdsample.errors import ConfigError, UnknownChoiceError

PAD, BOS, EOS, MASK, UNK = "<pad>", "<bos>", "<eos>", "<mask>", "<unk>"
SPECIALS = (PAD, BOS, EOS, MASK, UNK)
REPRESENTATIONS = ("smiles", "selfies")

# One alternative per SMILES token class, longest first where prefixes collide: bracket atoms (isotope, chirality,
# charge, H count all inside), the two-letter organic-subset halogens, two-digit ring closures (%NN), the other
# organic-subset atoms (aliphatic and aromatic), bonds, branches, dots, single-digit ring closures.
SMILES_TOKEN = re.compile(r"\[[^\[\]]+\]|Br|Cl|%\d\d|[BCNOPSFI]|[bcnops]|[=#\-+\\/:~@?>*$.()]|\d")


def split_smiles(smiles: str) -> list[str] | None:
    """Atom-level tokens of ``smiles``, or None if some character belongs to no token (round trip would fail)."""
    tokens = SMILES_TOKEN.findall(smiles)
    return tokens if "".join(tokens) == smiles else None


def split_selfies(text: str) -> list[str] | None:
    """The ``[...]`` symbols of a SELFIES string, or None if it is not a concatenation of symbols."""
    try:
        tokens = list(selfies.split_selfies(text))
    except ValueError:  # unbalanced brackets
        return None
    return tokens if "".join(tokens) == text else None


def smiles_to_selfies(smiles: str) -> str | None:
    """SELFIES of a SMILES string, None when the selfies encoder rejects it (e.g. unsupported valences)."""
    try:
        return selfies.encoder(smiles)
    except selfies.EncoderError:
        return None


@dataclass(frozen=True)
class Vocab:
    """The ordered token list of one representation, and the canvas length its house model was trained for."""

    representation: str
    tokens: tuple[str, ...]
    length: int

    def __post_init__(self) -> None:
        if self.representation not in REPRESENTATIONS:
            raise UnknownChoiceError("representation", self.representation, REPRESENTATIONS)
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise ConfigError(f"a {self.representation} vocabulary must start with {', '.join(SPECIALS)}")

    @property
    def index(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tokens)}

    pad_id = property(lambda self: 0)
    bos_id = property(lambda self: 1)
    eos_id = property(lambda self: 2)
    mask_id = property(lambda self: 3)
    unk_id = property(lambda self: 4)

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str] | None:
        """Tokens of ``text`` in this representation (SMILES text for "smiles", SELFIES text for "selfies")."""
        return split_smiles(text) if self.representation == "smiles" else split_selfies(text)

    def save(self, path: Path) -> None:
        data = {"representation": self.representation, "length": self.length, "tokens": list(self.tokens)}
        path.write_text(json.dumps(data, indent=0))

    @classmethod
    def load(cls, path: Path) -> Vocab:
        """Read a ``vocab.json``; a truncated or malformed one is a one-line ConfigError naming the file."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(data["representation"], tuple(data["tokens"]), int(data["length"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise ConfigError(f"vocabulary {path} is broken ({err.__class__.__name__}: {err}); "
                              f"re-download or retrain the model") from None
