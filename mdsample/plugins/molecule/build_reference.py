"""Rebuild the reference data shipped in ``reference/`` from prepared MOSES data (`mdsample data --build-reference`).

Everything the metrics and the tokenizers need offline is derived here, deterministically (fixed seed), so anyone
with the molsets wheel can reproduce the files and compare checksums:

- ``vocab_smiles.json`` / ``vocab_selfies.json``: the special tokens, then every token of MOSES train, sorted; and
  the canvas length (see ``vocab_build``).
- ``lengths.json``: per representation, the histogram of token counts over MOSES train (for the coverage figures).
- ``train_hashes.bin``: the novelty membership set of the (RDKit-canonical) MOSES train SMILES (see ``hashset``).
- ``fcd_test_stats.npz``: ChemNet mean/covariance of a seeded subsample of MOSES test (ChemNet on CPU is slow).
- ``test_fps.npy``: packed Morgan fingerprints of a seeded subsample of MOSES test, for SNN.
- ``test_fragments.tsv.gz`` / ``test_scaffolds.tsv.gz``: BRICS-fragment and scaffold counts over all of MOSES test.
"""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mdsample.plugins.molecule import chem, hashset
from mdsample.plugins.molecule.data import load_split
from mdsample.plugins.molecule.metrics import fcd, fragments
from mdsample.plugins.molecule.vocab_build import build_vocab, parallel_map

REFERENCE_DIR = Path(__file__).parent / "reference"
SEED = 0
FCD_SAMPLE = 20_000
SNN_SAMPLE = 10_000
STEPS = ("vocab", "hashes", "fcd", "fps", "counts")


def build_hashes(train: list[str], out: Path) -> None:
    """MOSES stores train as RDKit-canonical SMILES; the current RDKit reproduces them (tests check a sample)."""
    hashset.save(hashset.build(train), out / "train_hashes.bin")


def _subsample(smiles: list[str], k: int) -> list[str]:
    order = np.random.default_rng(SEED).permutation(len(smiles))[:k]
    return [smiles[i] for i in order]


def build_fcd(test: list[str], out: Path, sample: int) -> None:
    mu, sigma = fcd.stats(_subsample(test, sample))
    np.savez_compressed(out / "fcd_test_stats.npz", mu=mu, sigma=sigma, n=len(_subsample(test, sample)))


def build_fps(test: list[str], out: Path) -> None:
    mols = [chem.to_mol(s) for s in _subsample(test, SNN_SAMPLE)]
    np.save(out / "test_fps.npy", chem.pack_fps([chem.morgan(m) for m in mols if m is not None]))


def _frags_and_scaffold(smiles: str) -> tuple[list[str], str | None]:
    mol = chem.to_mol(smiles)
    return ([], None) if mol is None else (fragments.fragments(mol), fragments.scaffold(mol))


def build_counts(test: list[str], out: Path, processes: int) -> None:
    frag, scaf = Counter(), Counter()
    for f, s in parallel_map(_frags_and_scaffold, test, processes, chunksize=1024):
        frag.update(f)
        if s is not None:
            scaf[s] += 1
    for name, counts in (("test_fragments", frag), ("test_scaffolds", scaf)):
        with gzip.open(out / f"{name}.tsv.gz", "wt", compresslevel=9) as f:
            f.writelines(f"{c}\t{k}\n" for k, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def build_reference(
    steps: tuple[str, ...] = STEPS,
    out: Path = REFERENCE_DIR,
    dest: Path | None = None,
    processes: int = 2,
    fcd_sample: int = FCD_SAMPLE,
    log: Callable[[str], None] = print,
) -> None:
    """Run the named build steps (default: all) from the prepared data in ``dest`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    train = load_split("train", dest) if {"vocab", "hashes"} & set(steps) else []
    test = load_split("test", dest) if {"fcd", "fps", "counts"} & set(steps) else []
    jobs = {
        "vocab": lambda: build_vocab(train, out, processes),
        "hashes": lambda: build_hashes(train, out),
        "fcd": lambda: build_fcd(test, out, fcd_sample),
        "fps": lambda: build_fps(test, out),
        "counts": lambda: build_counts(test, out, processes),
    }
    for step in steps:
        start = time.perf_counter()
        jobs[step]()
        log(f"built {step} in {time.perf_counter() - start:.0f} s")
