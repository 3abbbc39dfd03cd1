"""Shared fixtures of the front-end tests: an isolated plugin manager with the toy domain, and a CLI runner."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # toy_domain.py is imported as a top-level module, as an entry point would name it
    sys.path.insert(0, str(TESTS))


@pytest.fixture
def toy_plugins(monkeypatch, tmp_path):
    """Only the built-in samplers (from their entry point) plus the toy domain; cwd is a fresh tmp dir."""
    import toy_domain

    from mdsample import plugin_manager

    monkeypatch.setenv("MDSAMPLE_PLUGINS", "samplers")
    monkeypatch.chdir(tmp_path)
    plugin_manager.reset()
    plugin_manager.register_plugin(toy_domain, "toy")
    yield plugin_manager
    plugin_manager.reset()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(toy_plugins, capsys):
    """Run ``mdsample ARGS`` in-process and return its exit code, stdout and stderr."""
    from mdsample.cli import main

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse's --help and usage errors
            code = exc.code
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke
