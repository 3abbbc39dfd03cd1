"""The plugin's tests run whether or not pip installed it, and whatever MDSAMPLE_* variables the shell holds.

If pip did not install it, its package and entry point are put on the path (at import, since the test modules
import ``mdsample_dna`` and look the plugin up by name when they are collected), in a folder removed at exit. The
user's MDSAMPLE_* settings (a plugin pin, a data directory) are dropped for the same reason, before collection.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mdsample import plugin_manager
from mdsample.testing.entry_points import plugin_site

SOURCE = Path(__file__).resolve().parent.parent
_site = Path(tempfile.mkdtemp(prefix="mdsample-dna-site-"))
atexit.register(shutil.rmtree, _site, ignore_errors=True)
sys.path[:0] = plugin_site(_site, SOURCE, "mdsample-dna", {"dna": "mdsample_dna"})
for _key in [k for k in os.environ if k.startswith("MDSAMPLE_")]:
    del os.environ[_key]
os.environ["MDSAMPLE_DATA"] = str(_site / "data")
plugin_manager.reset()
