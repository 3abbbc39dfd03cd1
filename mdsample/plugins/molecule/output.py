"""Writing a batch of molecules: ``samples.smi`` (every row, in order) and ``samples.png`` (a grid of valid ones).

``samples.smi`` has one line per sample, ``TEXT<TAB>valid`` or ``TEXT<TAB>invalid``: line i is sample i, and an
invalid row keeps its raw text (``<empty>`` for an empty one) so failures can be inspected. The grid shows at most
``GRID_MAX`` valid molecules; no PNG is written when none is valid.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from mdsample.plugins.molecule.chem import to_mol

GRID_MAX = 48
PER_ROW = 8


def save_samples(samples: list[str | None], run_dir: Path) -> list[Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    mols = [to_mol(s) for s in samples]
    smi = run_dir / "samples.smi"
    lines = [f"{_one_line(s)}\t{'invalid' if m is None else 'valid'}\n" for s, m in zip(samples, mols, strict=True)]
    smi.write_text("".join(lines))
    written = [smi]
    valid = [m for m in mols if m is not None][:GRID_MAX]
    if valid:
        png = run_dir / "samples.png"
        if _draw_grid(valid, png):
            written.append(png)
    return written


def _draw_grid(mols: list, png: Path) -> bool:
    """Draw the grid; RDKit's drawing needs the X render library, which headless servers may lack (say so, go on)."""
    try:
        from rdkit.Chem import Draw
    except ImportError as err:
        warnings.warn(f"no samples.png: RDKit drawing is unavailable ({err}); install libxrender1 to get it",
                      stacklevel=3)
        return False
    Draw.MolsToGridImage(mols, molsPerRow=min(PER_ROW, len(mols)), subImgSize=(220, 180)).save(png)
    return True


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split()) or "<empty>"
