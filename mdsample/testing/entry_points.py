"""Making a plugin that pip has not installed visible by entry point, for tests that must run either way.

``plugin_site(tmp, source_dir, dist, entry_points)`` writes a ``.dist-info`` (metadata and entry points) into
``tmp``; putting ``tmp`` and ``source_dir`` on ``sys.path`` (in-process) or ``PYTHONPATH`` (a subprocess) then makes
``importlib.metadata`` find the plugin exactly as an installed one, through the ``mdsample`` group. When the
distribution is installed already it returns no paths, so the installed copy is the one tested.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

MARKER = "MDSAMPLE_TEST_SITE"


def plugin_site(tmp: Path, source_dir: Path, dist: str, entry_points: dict[str, str]) -> list[str]:
    """Paths that make ``dist`` (with ``entry_points`` name -> target in the ``mdsample`` group) importable and
    registered; empty when ``dist`` is installed."""
    try:
        if distribution(dist).read_text(MARKER) is None:  # installed by pip, not by an earlier call of this function
            return []
    except PackageNotFoundError:
        pass
    info = Path(tmp) / f"{dist.replace('-', '_')}-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0\n")
    (info / MARKER).write_text("written by mdsample.testing.entry_points for tests\n")
    (info / "entry_points.txt").write_text("[mdsample]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return [str(tmp), str(source_dir)]
