"""MOSES's own precomputed reference statistics, read without molsets and without running foreign code.

MOSES computes FCD, SNN, Frag and Scaf against statistics it ships precomputed in the molsets wheel
(``moses/dataset/data/test_stats.npz`` and ``test_scaffolds_stats.npz``): ChemNet mean/covariance, the Morgan
fingerprints of all 176k molecules, and the BRICS-fragment and scaffold counters. Using exactly these makes our
numbers MOSES's numbers (recomputing them with today's RDKit would change some canonical fragment SMILES).

The files are NumPy pickles of nested dicts holding only arrays, lists of floats and ``collections.Counter``. A
restricted unpickler admits exactly those classes, so loading one cannot execute anything else; any other class in
the stream is refused with an error naming the file.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mdsample.errors import ConfigError

SETS = {"test": "test_stats.npz", "testsf": "test_scaffolds_stats.npz"}
"""Our short name of each MOSES reference set (``/Test``, ``/TestSF`` in MOSES's metric names) -> its stats file."""

_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("collections", "Counter"): collections.Counter,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing {module}.{name}") from None


def load(path: Path) -> dict[str, dict[str, Any]]:
    """The statistics dict of one ``*_stats.npz`` (keys FCD, SNN, Frag, Scaf, logP, SA, QED, weight)."""
    try:
        with zipfile.ZipFile(path) as zf:
            raw = zf.read("stats.npy")
        stream = io.BytesIO(raw)
        major, _ = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        read_header(stream)
        stats = _Restricted(stream, encoding="latin1").load()
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:
        raise ConfigError(f"{path} is not a MOSES statistics file ({err})") from None
    stats = stats.item() if isinstance(stats, np.ndarray) else stats
    if not isinstance(stats, dict) or not {"FCD", "SNN", "Frag", "Scaf"} <= set(stats):
        raise ConfigError(f"{path} lacks the FCD/SNN/Frag/Scaf statistics of a MOSES stats file")
    return stats
