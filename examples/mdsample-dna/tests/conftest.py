"""The plugin's tests run whether or not pip installed it: if not, its package and entry point are put on the path
(at import, since the test modules import ``mdsample_dna`` when they are collected), in a folder removed at exit."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from mdsample.testing.entry_points import plugin_site

SOURCE = Path(__file__).resolve().parent.parent
_site = Path(tempfile.mkdtemp(prefix="mdsample-dna-site-"))
atexit.register(shutil.rmtree, _site, ignore_errors=True)
sys.path[:0] = plugin_site(_site, SOURCE, "mdsample-dna", {"dna": "mdsample_dna"})
