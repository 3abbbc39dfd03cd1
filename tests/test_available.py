"""``mdsample.available_domains()`` / ``available_samplers()``: the names the installed plugins register.

The oracle is written out here: the ten built-in rules by name, the domains of the first-party plugins, and what
a pinned or extra plugin adds; the functions must list exactly those, sorted, without importing a domain or torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import toy_domain

import mdsample
from mdsample import plugin_manager

RULES = ["ar_med", "confidence", "eb", "entropy", "klass", "margin", "maskgit", "med", "random", "threshold"]


def test_pinned_plugins(monkeypatch):
    monkeypatch.setenv("MDSAMPLE_PLUGINS", "samplers,text,image")
    plugin_manager.reset()
    assert mdsample.available_samplers() == RULES
    assert mdsample.available_domains() == ["image", "text"]
    plugin_manager.register_plugin(toy_domain, "toy")
    assert mdsample.available_domains() == ["image", "text", "toy"]


def test_no_plugins(monkeypatch):
    monkeypatch.setenv("MDSAMPLE_PLUGINS", "")
    plugin_manager.reset()
    assert mdsample.available_samplers() == [] and mdsample.available_domains() == []


def test_every_installed_plugin_without_importing_torch(tmp_path):
    code = ("import json, sys, mdsample; print(json.dumps([mdsample.available_domains(), mdsample.available_samplers(),"
            " 'torch' in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k != "MDSAMPLE_PLUGINS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=120, check=True).stdout
    domains, samplers, torch_imported = json.loads(out)
    assert {"image", "molecule", "text"} <= set(domains) and domains == sorted(domains)
    assert set(RULES) <= set(samplers) and samplers == sorted(samplers)
    assert not torch_imported
