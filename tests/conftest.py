"""Shared fixtures of the tests: an isolated environment for every test, the toy domain, and a CLI runner.

Every test starts the same way whatever ran before it and whatever the user's shell holds: no ``MDSAMPLE_*``
variable from outside (data caches go to a temporary folder, never ~/.cache), a fresh plugin manager, and random
generators seeded (torch, numpy, random). So the suite passes in any order and with MDSAMPLE_* set. ``PYTHONPATH``
holds this interpreter's import path, so a test's subprocess imports the same mdsample and dependencies however
pytest found them (an editable install, a checkout on sys.path, the shell's PYTHONPATH) and whatever a test adds.
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Test modules read the registries when they are collected (e.g. parametrising over every domain), before any
# fixture runs: the user's MDSAMPLE_* settings are dropped here already, and again before every test.
for _key in [k for k in os.environ if k.startswith("MDSAMPLE_")]:
    del os.environ[_key]

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # toy_domain.py is imported as a top-level module, as an entry point would name it
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mdsample-data")


def import_path() -> str:
    """This interpreter's ``sys.path`` as a ``PYTHONPATH`` value (existing entries; the current directory left out)."""
    return os.pathsep.join(p for p in sys.path if p and os.path.exists(p))


@pytest.fixture(autouse=True)
def isolated(monkeypatch, data_root):
    import numpy as np
    import torch

    from mdsample import plugin_manager

    for key in [k for k in os.environ if k.startswith("MDSAMPLE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("MDSAMPLE_DATA", str(data_root))
    monkeypatch.setenv("PYTHONPATH", import_path())
    plugin_manager.reset()
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    yield
    plugin_manager.reset()


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
