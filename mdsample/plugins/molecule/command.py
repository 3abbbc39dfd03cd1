"""``mdsample data --domain molecule``: prepare MOSES, optionally pre-encode the corpus or rebuild ``reference/``.

Without ``--wheel`` or ``--csv-dir`` the command downloads the molsets==0.3.1 wheel with pip (``--no-deps``: only
the file, nothing is installed) into the data directory, then copies the splits out of it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from mdsample.errors import MissingFileError

WHEEL = "molsets==0.3.1"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", default="molecule", choices=["molecule"], help="the domain whose data to prepare")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--wheel", type=Path, help="path of the molsets-0.3.1 wheel (default: pip download it)")
    source.add_argument("--csv-dir", type=Path, help="folder with train/test/test_scaffolds .csv[.gz] instead")
    parser.add_argument("--dest", type=Path,
                        help="data directory (default: $MDSAMPLE_DATA/molecule, else ~/.cache/mdsample/molecule)")
    parser.add_argument("--encode", nargs="*", choices=["smiles", "selfies"], metavar="REPR",
                        help="also encode train/test as canvas rows for these representations (cached .npy)")
    parser.add_argument("--build-reference", action="store_true", help="rebuild the package's reference/ files")
    parser.add_argument("--out", type=Path, help="where --build-reference writes (default: the package's reference/)")
    parser.add_argument("--processes", type=int, default=2, help="worker processes for encoding and reference builds")


def _download_wheel(dest: Path) -> Path:
    folder = dest / "wheel"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL, "-d", str(folder)]
    if subprocess.run(cmd, check=False).returncode != 0 or not list(folder.glob("molsets-0.3.1-*.whl")):
        raise MissingFileError(f"could not download {WHEEL}; fetch it with `{' '.join(cmd[2:])}` and pass --wheel PATH")
    return next(folder.glob("molsets-0.3.1-*.whl"))


def run(args: argparse.Namespace) -> int:
    from mdsample.plugins.molecule import data  # torch comes with it: not for --help or argument errors

    dest = data.data_dir(args.dest)
    wheel = args.wheel
    if wheel is None and args.csv_dir is None:
        wheel = _download_wheel(dest)
    checksums = data.prepare(dest, wheel=wheel, csv_dir=args.csv_dir)
    print(f"prepared {len(checksums)} files in {dest} (sha256 in {dest / data.MANIFEST})")
    for representation in args.encode or []:
        from mdsample.plugins.molecule import reference
        from mdsample.plugins.molecule.corpus import encode_split

        for split in ("train", "test"):
            encode_split(split, reference.vocab(representation), dest, args.processes)
    if args.build_reference:
        from mdsample.plugins.molecule.build_reference import REFERENCE_DIR, build_reference

        build_reference(out=args.out or REFERENCE_DIR, dest=dest, processes=args.processes)
    return 0
