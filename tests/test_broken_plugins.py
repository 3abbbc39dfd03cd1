"""Broken plugins beyond what test_plugins.py covers: every way a plugin can break is reported by its name and the
CLI keeps working, also next to the real installed plugins.

test_plugins.py covers an entry point whose module fails to import (ModuleNotFoundError), a register_domains hook
that raises, a register_samplers hook that raises after registering, and duplicate names. Here: an entry point
naming a missing attribute, a module raising at import time, register_commands / register_metrics hooks that
raise, a hook that registers something that is not a rule, a metric that raises during a run, and asking for what
a broken plugin would have provided.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mdsample import plugin_manager
from mdsample.core.rules import BUILTIN_RULES
from mdsample.hookspecs import hookimpl
from mdsample.testing.entry_points import plugin_site

TESTS = Path(__file__).resolve().parent
DNA_SOURCE = TESTS.parent / "examples" / "mdsample-dna"

# module name -> source; the entry points below name them
MODULES = {
    "raises_at_import": 'raise RuntimeError("plugin configuration missing")\n',
    "lacks_attribute": "VALUE = 1\n",
    "bad_commands": """
        from mdsample.hookspecs import hookimpl

        @hookimpl
        def register_commands(register):
            raise KeyError("hello")

        @hookimpl
        def register_domains(register):
            raise TypeError("domain table corrupt")
    """,
}
ENTRY_POINTS = {
    "raises_at_import": "raises_at_import",
    "lacks_attribute": "lacks_attribute:plugin",
    "bad_commands": "bad_commands",
}


def site_with_broken_plugins(tmp_path: Path) -> Path:
    """A directory that, on PYTHONPATH, installs the broken plugins above by entry point."""
    site = tmp_path / "site"
    dist = site / "brokenplugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[mdsample]\n" + "".join(f"{name} = {target}\n" for name, target in ENTRY_POINTS.items())
    )
    for name, source in MODULES.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    plugin_site(site, DNA_SOURCE, "mdsample-dna", {"dna": "mdsample_dna"})  # the example plugin, if not installed
    return site


def mdsample_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    """``mdsample ARGS`` in a fresh interpreter seeing every installed plugin plus the broken ones (nothing pinned)."""
    env = {k: v for k, v in os.environ.items() if k != "MDSAMPLE_PLUGINS"}
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(TESTS), str(DNA_SOURCE), os.environ["PYTHONPATH"]]),
               COLUMNS="250")
    cmd = [sys.executable, "-c", "import sys; from mdsample.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, env=env, cwd=site.parent, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return site_with_broken_plugins(tmp_path_factory.mktemp("broken"))


def test_list_names_each_broken_plugin_and_its_error_next_to_the_working_ones(site):
    done = mdsample_cli(site, "list")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    rows = {" ".join(line.replace("│", " ").split()) for line in done.stdout.splitlines()}
    assert {"raises_at_import failed", "lacks_attribute failed", "bad_commands failed"} <= rows
    assert {"samplers loaded", "molecule loaded", "dna loaded"} <= rows
    assert "raises_at_import failed to load raises_at_import: RuntimeError: plugin configuration missing" in rows
    assert ("lacks_attribute failed to load lacks_attribute:plugin: AttributeError: module 'lacks_attribute' has no "
            "attribute 'plugin'") in rows
    assert "bad_commands register_commands raised KeyError: 'hello'" in rows
    assert "bad_commands register_domains raised TypeError: domain table corrupt" in rows


def test_generation_still_works_with_broken_plugins_installed(site):
    done = mdsample_cli(site, "--domain", "dna", "--sampler", "spaced", "-n", "2", "--out", "run", "--no-progress",
                        "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert len((site.parent / "run" / "samples.fasta").read_text().splitlines()) == 4


def test_asking_for_what_a_broken_plugin_would_provide_is_a_one_line_error(site):
    done = mdsample_cli(site, "hello")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "unknown command 'hello'" in done.stderr and "list" in done.stderr


class RaisingCommands:
    @hookimpl
    def register_commands(self, register):
        raise RuntimeError("no commands today")


class RaisingMetricsHook:
    @hookimpl
    def register_metrics(self, register):
        register("never_seen", lambda objects, domain: 1.0)
        raise ValueError("metric table corrupt")


class NotARule:
    @hookimpl
    def register_samplers(self, register):
        register("klass-but-a-string")


class FailingMetric:
    @hookimpl
    def register_metrics(self, register):
        register("explodes", lambda objects, domain: 1 / 0)
        register("length", lambda objects, domain: float(len(objects[0])))


def test_raising_commands_hook_leaves_the_cli_working(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one table row per line
    plugin_manager.register_plugin(RaisingCommands(), "no-commands")
    res = cli("list")
    assert res.code == 0
    rows = {" ".join(line.replace("│", " ").split()) for line in res.out.splitlines()}
    assert {"no-commands failed", "no-commands register_commands raised RuntimeError: no commands today"} <= rows
    assert cli("--domain", "toy", "--out", tmp_path / "run", "--no-progress").code == 0


def test_raising_metrics_hook_drops_its_metrics_and_the_run_finishes(cli, tmp_path):
    plugin_manager.register_plugin(RaisingMetricsHook(), "bad-metrics")
    assert cli("--domain", "toy", "--out", tmp_path / "run", "--no-progress").code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "never_seen" not in metrics and metrics["valid"] == 1.0
    (problem,) = plugin_manager.problems()
    assert problem.plugin == "bad-metrics"
    assert problem.error == "register_metrics raised ValueError: metric table corrupt"


def test_registering_something_that_is_not_a_rule_is_reported_by_name(toy_plugins):
    plugin_manager.register_plugin(NotARule(), "not-a-rule")
    assert plugin_manager.get_rule("klass") is BUILTIN_RULES["klass"]
    (problem,) = plugin_manager.problems()
    assert problem.plugin == "not-a-rule" and problem.fatal
    assert problem.error.startswith("register_samplers raised AttributeError")


def test_a_metric_raising_during_a_run_is_null_and_named_in_a_warning(cli, tmp_path):
    plugin_manager.register_plugin(FailingMetric(), "fragile")
    res = cli("--domain", "toy", "--out", tmp_path / "run", "--no-progress")
    assert res.code == 0
    assert "warning: metric 'explodes' of plugin 'fragile' failed: division by zero" in res.err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["explodes"] is None and metrics["length"] == 8.0



def test_a_hook_calling_sys_exit_is_reported_not_fatal():
    import sys
    import types

    from mdsample import plugin_manager
    from mdsample.hookspecs import hookimpl

    def register_domains(register):
        sys.exit(3)

    module = types.SimpleNamespace(register_domains=hookimpl(register_domains))
    plugin_manager.reset()
    try:
        plugin_manager.register_plugin(module, "exiting")
        assert "molecule" in plugin_manager.domains()
        assert any(p.plugin == "exiting" for p in plugin_manager.problems())
    finally:
        plugin_manager.reset()
