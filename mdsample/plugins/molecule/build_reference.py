"""Rebuild the reference data shipped in ``reference/`` from prepared MOSES data (`mdsample data --build-reference`).

Everything the metrics and the tokenizers need offline is derived here, deterministically, from the molsets wheel,
so anyone with it can reproduce the files and compare checksums:

- ``vocab_smiles.json`` / ``vocab_selfies.json``: the special tokens, then every token of MOSES train, sorted; and
  the canvas length (see ``vocab_build``). ``lengths.json``: the token-count histograms over MOSES train.
- ``train_hashes.bin``: the novelty membership set of the (RDKit-canonical) MOSES train SMILES (see ``hashset``).
- per MOSES reference set (``test``: Test, ``testsf``: TestSF), taken from MOSES's own precomputed statistics in
  the wheel (``moses_stats``), whole, so that the metrics are MOSES's: ``fcd_<set>.npz`` (ChemNet ``mu``, ``sigma``),
  ``fps_<set>.bin`` (the Morgan fingerprints of every molecule, ``fpstore``), ``fragments_<set>.tsv.gz`` and
  ``scaffolds_<set>.tsv.gz`` (MOSES's counters, ``count<TAB>key``).
- ``filters.csv.gz``: MOSES's filter SMARTS (its ``mcf.csv`` and ``wehi_pains.csv``, in MOSES's order).
"""

from __future__ import annotations

import csv
import gzip
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mdsample.plugins.molecule import fpstore, hashset, moses_stats
from mdsample.plugins.molecule.data import load_split, prepared_file
from mdsample.plugins.molecule.vocab_build import build_vocab

REFERENCE_DIR = Path(__file__).parent / "reference"
STEPS = ("vocab", "hashes", "moses", "filters")
FILTER_TABLES = ("mcf.csv", "wehi_pains.csv")


def build_hashes(train: list[str], out: Path) -> None:
    """MOSES stores train as RDKit-canonical SMILES; the current RDKit reproduces them (tests check a sample)."""
    hashset.save(hashset.build(train), out / "train_hashes.bin")


def write_counts(counts: Counter[str], path: Path) -> None:
    with gzip.open(path, "wt", compresslevel=9) as f:
        f.writelines(f"{c}\t{k}\n" for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def build_moses_sets(out: Path, dest: Path | None) -> None:
    """FCD statistics, fingerprints and fragment/scaffold counts of Test and TestSF, from MOSES's own files."""
    for name, stats_file in moses_stats.SETS.items():
        stats = moses_stats.load(prepared_file(stats_file, dest))
        fcd = stats["FCD"]
        np.savez_compressed(out / f"fcd_{name}.npz", mu=np.asarray(fcd["mu"]), sigma=np.asarray(fcd["sigma"]))
        fpstore.save(np.asarray(stats["SNN"]["fps"], dtype=np.uint8), out / f"fps_{name}.bin")
        write_counts(Counter(stats["Frag"]["frag"]), out / f"fragments_{name}.tsv.gz")
        write_counts(Counter(stats["Scaf"]["scaf"]), out / f"scaffolds_{name}.tsv.gz")


def build_filters(out: Path, dest: Path | None) -> None:
    """One table ``name,smarts`` of MOSES's MCF then PAINS alerts (``wehi_pains.csv`` has no header: smarts, name)."""
    with open(prepared_file("mcf.csv", dest), newline="") as f:
        rows = [(r["names"], r["smarts"]) for r in csv.DictReader(f)]
    with open(prepared_file("wehi_pains.csv", dest), newline="") as f:
        rows += [(name, smarts) for smarts, name in csv.reader(f)]
    with gzip.open(out / "filters.csv.gz", "wt", newline="", compresslevel=9) as f:
        writer = csv.writer(f)
        writer.writerow(["name", "smarts"])
        writer.writerows(rows)


def build_reference(
    steps: tuple[str, ...] = STEPS,
    out: Path = REFERENCE_DIR,
    dest: Path | None = None,
    processes: int = 2,
    log: Callable[[str], None] = print,
) -> None:
    """Run the named build steps (default: all) from the prepared data in ``dest`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    train = load_split("train", dest) if {"vocab", "hashes"} & set(steps) else []
    jobs = {
        "vocab": lambda: build_vocab(train, out, processes),
        "hashes": lambda: build_hashes(train, out),
        "moses": lambda: build_moses_sets(out, dest),
        "filters": lambda: build_filters(out, dest),
    }
    for step in steps:
        start = time.perf_counter()
        jobs[step]()
        log(f"built {step} in {time.perf_counter() - start:.0f} s")
