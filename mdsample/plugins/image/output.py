"""Image outputs of a run: one PNG per sample, a PNG grid of all of them, and a JSON-lines index with the labels.

The grid is built with numpy and PIL (no torchvision: CI's torch build cannot have it beside it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

GRID_FILE = "grid.png"
INDEX_FILE = "samples.jsonl"
IMAGE_DIR = "images"


def to_array(image: Image.Image) -> np.ndarray:
    """uint8 ``[H, W, 3]`` of a PIL image (grey images repeated over the channels)."""
    return np.asarray(image.convert("RGB"))


def make_grid(images: list[Image.Image], padding: int = 2, columns: int | None = None) -> Image.Image:
    """All images in a near-square grid, ``padding`` pixels of grey between them (same-size images)."""
    arrays = np.stack([to_array(im) for im in images])
    n, h, w, c = arrays.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), 128, dtype=np.uint8)
    for i, array in enumerate(arrays):  # one slice copy per image, at save time (not per decode step)
        r, k = divmod(i, cols)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[y : y + h, x : x + w] = array
    return Image.fromarray(grid)


def save_images(images: list[Image.Image], requests: list[dict[str, Any]], run_dir: Path) -> list[Path]:
    """Write ``images/NNNNN.png``, ``grid.png`` and ``samples.jsonl``; returns the grid and the index paths."""
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = run_dir / IMAGE_DIR
    folder.mkdir(exist_ok=True)
    lines = []
    for i, (image, request) in enumerate(zip(images, requests, strict=True)):
        path = folder / f"{i:05d}.png"
        image.save(path)
        lines.append(json.dumps({"index": i, "file": f"{IMAGE_DIR}/{path.name}", **request}))
    make_grid(images).save(run_dir / GRID_FILE)
    (run_dir / INDEX_FILE).write_text("\n".join(lines) + "\n")
    return [run_dir / GRID_FILE, run_dir / INDEX_FILE]
