"""The results file: one JSON line per finished cell, appended so that no kill can lose or corrupt a finished one.

A line is written whole (one ``write`` of the complete line with its newline), flushed and fsynced before the
runner moves on, under an exclusive ``flock`` so two studies sharing a file never interleave. A process killed
with SIGKILL in the middle of that write can leave only a final line without its newline; readers ignore such a
tail, and the next writer cuts it off before appending. A damaged line anywhere else is reported, never skipped.
Lines are strict JSON: NaN and infinities (an undefined metric) are written as null.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from pathlib import Path
from typing import Any

from mdsample.errors import MdsampleError, MissingFileError

RESULTS_FILE = "results.jsonl"


class ResultsFileError(MdsampleError):
    """A results file holds a line that is not a complete JSON record (other than a torn last line)."""


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats (also nested) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def results_path(path: str | Path) -> Path:
    """``path`` itself, or its ``results.jsonl`` when it names a study directory."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() else path


def _parse(data: bytes, path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of ``data`` and the byte length of its complete lines (a torn last line is not counted)."""
    complete = data.rfind(b"\n") + 1
    records = []
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "msg", None) or exc.reason
            raise ResultsFileError(f"line {number} of {path} is not valid JSON ({reason}); delete that line and "
                                   "rerun the study to recompute its cell") from None
        if not isinstance(record, dict) or "key" not in record:
            raise ResultsFileError(f"line {number} of {path} is not a study record (no 'key'); delete that line")
        records.append(record)
    return records, complete


class ResultsStore:
    """Append-only JSON-lines store of cell records, keyed by ``record["key"]``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """(records in file order, whether a torn last line was ignored); MissingFileError if there is no file."""
        if not self.path.is_file():
            raise MissingFileError(f"results file {str(self.path)!r} does not exist; run `mdsample study` first")
        data = self.path.read_bytes()
        records, complete = _parse(data, self.path)
        return records, complete < len(data)

    def records(self) -> list[dict[str, Any]]:
        """Every complete record (none when the file does not exist yet)."""
        return self.read()[0] if self.path.is_file() else []

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one complete line and make it durable before returning."""
        line = json.dumps(json_safe(record), allow_nan=False).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size:  # cut a torn last line left by a killed writer
                os.lseek(fd, max(0, size - 1), os.SEEK_SET)
                if os.read(fd, 1) != b"\n":
                    data = os.pread(fd, size, 0)
                    os.ftruncate(fd, data.rfind(b"\n") + 1)
            os.lseek(fd, 0, os.SEEK_END)
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)  # also releases the lock
        if created:
            _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The latest record of each cell (same study and label) and how many older, superseded records were dropped.

    A cell whose config changed keeps its label and gets a new key; the newer line wins, so a report never mixes
    numbers from two configs of one cell.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        cell = (record.get("study", ""), record.get("label", record["key"]))
        latest.pop(cell, None)  # re-insert: the dict keeps the order in which cells were last written
        latest[cell] = record
    return list(latest.values()), len(records) - len(latest)
