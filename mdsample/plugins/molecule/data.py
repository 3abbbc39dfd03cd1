"""Prepared MOSES data: copy the splits out of the molsets wheel (or a CSV folder), record and verify checksums.

Why copy instead of installing molsets: ``pip install molsets`` pins pomegranate 0.12 and old numpy, which would
break the environment; the wheel is just a zip, and its ``moses/dataset/data/*.csv.gz`` are the canonical MOSES
splits. The wheel's ``*_stats.npz`` (MOSES's precomputed reference statistics) and the MCF and PAINS SMARTS tables
of its ``moses/metrics`` are copied too: ``build_reference`` derives the shipped ``reference/`` files from them
(the statistics are read by ``moses_stats``' restricted unpickler, which needs no molsets and runs no code).

Layout of the data directory (``$MDSAMPLE_DATA/molecule``, else ``~/.cache/mdsample/molecule``)::

    train.csv.gz  test.csv.gz  test_scaffolds.csv.gz  test_stats.npz  test_scaffolds_stats.npz  mcf.csv
    wehi_pains.csv  manifest.json  encoded/*.npy
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import zipfile
from functools import cache
from pathlib import Path

from mdsample.errors import ConfigError, DataNotPreparedError, MissingFileError
from mdsample.models.house import sha256_file

SPLITS = ("train", "test", "test_scaffolds")
STATS = ("test_stats.npz", "test_scaffolds_stats.npz")
TABLES = ("mcf.csv", "wehi_pains.csv")
WHEEL_DIRS = {"split": "moses/dataset/data/", "table": "moses/metrics/"}
MANIFEST = "manifest.json"
PREPARE_HINT = "run `mdsample data --domain molecule` (needs the molsets==0.3.1 wheel or --csv-dir)"


def data_dir(dest: str | Path | None = None) -> Path:
    """Where prepared data lives: ``dest``, else ``$MDSAMPLE_DATA/molecule``, else ``~/.cache/mdsample/molecule``."""
    if dest is not None:
        return Path(dest).expanduser()
    root = os.environ.get("MDSAMPLE_DATA")
    return Path(root).expanduser() / "molecule" if root else Path.home() / ".cache" / "mdsample" / "molecule"


def prepare(dest: Path, wheel: Path | None = None, csv_dir: Path | None = None) -> dict[str, str]:
    """Copy the MOSES splits (and SMARTS tables when available) into ``dest``; write and return the checksums.

    Exactly one source: the molsets wheel, or a folder with ``train.csv[.gz]``, ``test.csv[.gz]``,
    ``test_scaffolds.csv[.gz]`` (a ``SMILES`` header, one molecule per line) and optionally the tables.
    """
    if (wheel is None) == (csv_dir is None):
        raise ConfigError("give exactly one source: --wheel PATH (molsets-0.3.1 wheel) or --csv-dir DIR")
    dest.mkdir(parents=True, exist_ok=True)
    written = _from_wheel(Path(wheel), dest) if wheel is not None else _from_csv_dir(Path(csv_dir), dest)
    checksums = {name: sha256_file(dest / name) for name in sorted(written)}
    source = str(wheel if wheel is not None else csv_dir)
    (dest / MANIFEST).write_text(json.dumps({"source": source, "sha256": checksums}, indent=2))
    _verified.cache_clear()
    return checksums


def _from_wheel(wheel: Path, dest: Path) -> list[str]:
    if not wheel.is_file():
        raise MissingFileError(f"wheel {wheel} not found; get it with `pip download --no-deps molsets==0.3.1 -d DIR`")
    written = []
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        wanted = {f"{WHEEL_DIRS['split']}{s}.csv.gz": f"{s}.csv.gz" for s in SPLITS}
        wanted |= {f"{WHEEL_DIRS['split']}{s}": s for s in STATS}
        wanted |= {f"{WHEEL_DIRS['table']}{t}": t for t in TABLES}
        for member, target in wanted.items():
            if member not in names:
                if target.endswith(".csv.gz"):
                    raise ConfigError(f"{wheel} has no {member}; is it the molsets==0.3.1 wheel?")
                continue
            with zf.open(member) as src, open(dest / target, "wb") as out:
                shutil.copyfileobj(src, out)
            written.append(target)
    return written


def _from_csv_dir(folder: Path, dest: Path) -> list[str]:
    if not folder.is_dir():
        raise MissingFileError(f"CSV folder {folder} not found")
    written = []
    for split in SPLITS:
        gz, plain = folder / f"{split}.csv.gz", folder / f"{split}.csv"
        if gz.is_file():
            shutil.copyfile(gz, dest / f"{split}.csv.gz")
        elif plain.is_file():
            with open(plain, "rb") as src, gzip.open(dest / f"{split}.csv.gz", "wb") as out:
                shutil.copyfileobj(src, out)
        else:
            raise MissingFileError(f"{folder} lacks {split}.csv or {split}.csv.gz")
        written.append(f"{split}.csv.gz")
    for table in STATS + TABLES:
        if (folder / table).is_file():
            shutil.copyfile(folder / table, dest / table)
            written.append(table)
    return written


@cache
def _verified(path: Path) -> Path:
    """``path`` after checking it against the manifest beside it (once per process)."""
    manifest = path.parent / MANIFEST
    if not manifest.is_file() or not path.is_file():
        raise DataNotPreparedError(f"MOSES data not prepared in {path.parent} ({path.name} missing); {PREPARE_HINT}")
    expected = json.loads(manifest.read_text())["sha256"].get(path.name)
    if expected is None or sha256_file(path) != expected:
        raise DataNotPreparedError(f"{path} does not match its checksum in {manifest}; {PREPARE_HINT} again")
    return path


def prepared_file(name: str, dest: str | Path | None = None) -> Path:
    """A verified prepared file by name (e.g. ``"train.csv.gz"``); DataNotPreparedError when absent or altered."""
    return _verified(data_dir(dest).resolve() / name)


def has_file(name: str, dest: str | Path | None = None) -> bool:
    """Whether an optional prepared file (e.g. ``mcf.csv``) is present and intact."""
    try:
        prepared_file(name, dest)
    except DataNotPreparedError:
        return False
    return True


def load_split(split: str, dest: str | Path | None = None) -> list[str]:
    """The SMILES of one MOSES split (``train``, ``test``, ``test_scaffolds``), in file order."""
    if split not in SPLITS:
        raise ConfigError(f"unknown MOSES split {split!r}; choose one of: {', '.join(SPLITS)}")
    with gzip.open(prepared_file(f"{split}.csv.gz", dest), "rt") as f:
        return _smiles_column(f)


def _smiles_column(f: io.TextIOBase) -> list[str]:
    rows = csv.reader(f)
    header = [h.strip().upper() for h in next(rows, None) or []]
    if "SMILES" not in header:
        raise ConfigError(f"{getattr(f, 'name', 'CSV')} has no SMILES column in its header {header}")
    col = header.index("SMILES")
    return [row[col] for row in rows if row]
