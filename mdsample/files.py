"""Reading the files a model or a run is made of, so that a broken one is a one-line error that names it.

A truncated download, a half-written copy or an edited-by-hand JSON file would otherwise surface as a parser's
exception deep inside transformers or safetensors, naming neither the file nor what to do. These readers check a
file before the heavy loader sees it and raise BrokenFileError (CLI exit 2) with the file's path.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from mdsample.errors import BrokenFileError

SAFETENSORS_SUFFIX = ".safetensors"


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """The parsed contents of the JSON file ``path``; BrokenFileError if it is not valid UTF-8 JSON."""
    try:
        return json.loads(Path(path).read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BrokenFileError(path, what, exc) from None


def check_safetensors(path: str | Path, what: str = "weights file") -> None:
    """BrokenFileError unless ``path`` is a complete safetensors file: its header parses and its tensors' byte
    ranges cover the file exactly (what a truncated or padded file fails); the tensors themselves are not read."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            f.keys()
    except Exception as exc:  # safetensors raises its own error types (and OSError) for every malformed file
        raise BrokenFileError(path, what, exc) from None


def recorded_sha256(card: Path) -> dict[str, str]:
    """Weights file name -> sha256, as a MODEL_CARD.md written by ``mdsample train`` records them (``- weights:
    `model.safetensors` ...`` then ``- sha256: `HEX` ``); empty when there is no card or it records none."""
    if not card.is_file():
        return {}
    text = card.read_text(errors="replace")
    name = re.search(r"^- weights: `([^`]+)`", text, re.M)
    digest = re.search(r"^- sha256: `([0-9a-f]{64})`", text, re.M)
    return {name.group(1): digest.group(1)} if name and digest else {}


def check_model_dir(directory: str | Path) -> None:
    """Check the ``config.json`` and every ``*.safetensors`` file of a local ``save_pretrained`` directory, and the
    weights' sha256 where the directory's MODEL_CARD.md records it (shipped and trained models): that also catches
    bytes changed inside the tensors, which no parser can see."""
    directory = Path(directory)
    config = directory / "config.json"
    if config.is_file() and not isinstance(read_json(config, "model config"), dict):
        raise BrokenFileError(config, "model config", "not a JSON object")
    for weights in sorted(directory.glob(f"*{SAFETENSORS_SUFFIX}")):
        check_safetensors(weights)
    for name, digest in recorded_sha256(directory / "MODEL_CARD.md").items():
        weights = directory / name
        if weights.is_file() and sha256_file(weights) != digest:
            raise BrokenFileError(weights, "weights file", f"its sha256 differs from the {digest[:12]}... that "
                                  "MODEL_CARD.md records")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, recorded in MODEL_CARD.md so that weights can be verified."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
