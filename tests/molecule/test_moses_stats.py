"""MOSES's precomputed statistics: read through a restricted unpickler, written into the compact shipped files."""

import pickle
import zipfile
from collections import Counter

import numpy as np
import pytest

from mdsample.errors import ConfigError
from mdsample.plugins.molecule import fpstore, moses_stats


def _stats_npz(path, stats):
    """A file laid out like MOSES's: ``np.savez`` of one 0-d object array holding the dict."""
    holder = np.empty((), dtype=object)
    holder[()] = stats
    np.savez(path, stats=holder)
    return path


def _stats():
    rng = np.random.default_rng(0)
    return {"FCD": {"mu": rng.random(4, dtype=np.float32), "sigma": np.eye(4)},
            "SNN": {"fps": (rng.random((5, 16)) < 0.3).astype(np.uint8)},
            "Frag": {"frag": Counter({"C[*]": 3, "c1ccccc1": 1})}, "Scaf": {"scaf": Counter({"c1ccc2ccccc2c1": 2})},
            "logP": {"values": [0.5, 1.5]}}


def test_reads_what_moses_wrote(tmp_path):
    stats = _stats()
    got = moses_stats.load(_stats_npz(tmp_path / "test_stats.npz", stats))
    assert (got["FCD"]["mu"] == stats["FCD"]["mu"]).all() and (got["SNN"]["fps"] == stats["SNN"]["fps"]).all()
    assert got["Frag"]["frag"] == stats["Frag"]["frag"] and isinstance(got["Scaf"]["scaf"], Counter)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_refuses_anything_but_arrays_and_counters(tmp_path, capsys):
    stats = _stats() | {"SA": {"values": _Evil()}}
    with pytest.raises(ConfigError, match="refusing builtins.print"):
        moses_stats.load(_stats_npz(tmp_path / "evil.npz", stats))
    assert "pwned" not in capsys.readouterr().out


def test_broken_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="junk.npz"):
        moses_stats.load(tmp_path / "junk.npz")
    with zipfile.ZipFile(tmp_path / "other.npz", "w") as zf:
        zf.writestr("stats.npy", pickle.dumps({"a": 1}))
    with pytest.raises(ConfigError, match="other.npz"):
        moses_stats.load(tmp_path / "other.npz")


def test_fingerprint_store_round_trips_and_rejects_truncation(tmp_path):
    bits = (np.random.default_rng(1).random((37, 1024)) < 0.05).astype(np.uint8)
    fpstore.save(bits, tmp_path / "fps.bin")
    assert (np.unpackbits(fpstore.load(tmp_path / "fps.bin"), axis=1) == bits).all()
    raw = (tmp_path / "fps.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ConfigError, match="cut.bin"):
        fpstore.load(tmp_path / "cut.bin")
