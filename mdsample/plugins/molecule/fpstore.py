"""A compact file of fingerprints: every bit of N Morgan fingerprints, packed 8 to a byte, then lzma-compressed.

Why: SNN compares each generated molecule with all 176k molecules of a MOSES reference set, and MOSES's own
fingerprints (1024 bits each) are 180 MB as stored in the molsets wheel, 22.5 MB packed. Their bits are sparse and
repetitive, so lzma brings one set to ~3.9 MB, which is small enough to ship and decompresses in well under a second.
The format is lossless: ``load`` returns exactly the packed rows that ``save`` was given.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np

from mdsample.errors import ConfigError

_MAGIC = b"MDFP1\n"


def save(bits: np.ndarray, path: Path) -> None:
    """Write ``bits`` (``uint8 [N, n_bits]`` of 0/1, n_bits a multiple of 8)."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), axis=1)
    header = _MAGIC + len(packed).to_bytes(8, "little") + packed.shape[1].to_bytes(4, "little")
    path.write_bytes(header + lzma.compress(packed.tobytes(), preset=9 | lzma.PRESET_EXTREME))


def load(path: Path) -> np.ndarray:
    """The packed rows ``uint8 [N, n_bits / 8]`` (``np.unpackbits(rows, axis=1)`` gives the bits back)."""
    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC) or len(raw) < len(_MAGIC) + 12:
        raise ConfigError(f"{path} is not a fingerprint file (bad header); reinstall mdsample or rebuild it with "
                          f"`mdsample data --domain molecule --build-reference`")
    pos = len(_MAGIC)
    n, width = int.from_bytes(raw[pos : pos + 8], "little"), int.from_bytes(raw[pos + 8 : pos + 12], "little")
    try:
        body = lzma.decompress(raw[pos + 12 :])
    except lzma.LZMAError as err:
        raise ConfigError(f"{path} is corrupted ({err}); reinstall mdsample or rebuild it") from None
    if len(body) != n * width:
        raise ConfigError(f"{path} is truncated: {len(body)} bytes of fingerprints, expected {n * width}")
    return np.frombuffer(body, dtype=np.uint8).reshape(n, width)
