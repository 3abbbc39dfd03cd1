"""Plugin loading: pinning, isolation of broken plugins (by entry point, in a subprocess), duplicates, hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mdsample import plugin_manager
from mdsample.core.rules import BUILTIN_RULES, Rule
from mdsample.errors import UnknownChoiceError
from mdsample.hookspecs import hookimpl

TESTS = Path(__file__).resolve().parent


def test_builtin_samplers_come_from_their_entry_point(toy_plugins):
    found = plugin_manager.samplers()
    assert set(found) == set(BUILTIN_RULES)
    assert {plugin for _, plugin in found.values()} == {"samplers"}
    assert plugin_manager.get_rule("klass") is BUILTIN_RULES["klass"]
    assert plugin_manager.load_domain("toy").name == "toy"


def test_zero_plugins(monkeypatch, cli):
    monkeypatch.setenv("MDSAMPLE_PLUGINS", "")
    plugin_manager.reset()
    assert plugin_manager.samplers() == {} and plugin_manager.domains() == {}
    with pytest.raises(UnknownChoiceError, match=r"\(none registered\)"):
        plugin_manager.get_rule("klass")
    res = cli("list")
    assert res.code == 0
    assert "Domains: (none)" in res.out and "Samplers: (none)" in res.out and "Plugin problems: (none)" in res.out
    res = cli("--domain", "toy")
    assert res.code == 2 and "unknown domain 'toy'; choose one of: (none registered)" in res.err


class RaisingHook:
    @hookimpl
    def register_samplers(self, register):
        register(BUILTIN_RULES["random"])
        raise RuntimeError("sampler table\ncorrupt")


class Duplicate:
    @hookimpl
    def register_samplers(self, register):
        class Klass(Rule):
            """A rival klass."""

            name = "klass"

        register(Klass)


def test_raising_hook_is_reported_and_dropped(toy_plugins):
    toy_plugins.register_plugin(RaisingHook(), "raiser")
    assert plugin_manager.get_rule("random") is BUILTIN_RULES["random"]  # from "samplers", not "raiser"
    assert plugin_manager.samplers()["random"][1] == "samplers"
    (problem,) = plugin_manager.problems()
    assert problem.plugin == "raiser" and problem.fatal
    assert problem.error == "register_samplers raised RuntimeError: sampler table corrupt"
    assert "raiser" not in plugin_manager.loaded_plugins() and "toy" in plugin_manager.loaded_plugins()


def test_duplicate_name_is_reported_and_first_wins(toy_plugins):
    toy_plugins.register_plugin(Duplicate(), "rival")
    assert plugin_manager.get_rule("klass") is BUILTIN_RULES["klass"]
    (problem,) = plugin_manager.problems()
    assert problem.plugin == "rival" and not problem.fatal and "duplicate sampler 'klass'" in problem.error
    assert "rival" in plugin_manager.loaded_plugins()


class Extras:
    """A third-party plugin adding a command and two metrics."""

    @hookimpl
    def register_commands(self, register):
        def configure(parser):
            parser.add_argument("--name", default="world")

        def run(args):
            print(f"hello {args.name}")
            return 3

        register("hello", "say hello", configure, run)

    @hookimpl
    def register_metrics(self, register):
        register("mean_length", lambda objects, domain: sum(map(len, objects)) / len(objects))
        register("not_for_toy", lambda objects, domain: None)


def test_plugin_command_and_metrics(cli, tmp_path):
    plugin_manager.register_plugin(Extras(), "extras")
    res = cli("hello", "--name", "tests")
    assert res.out == "hello tests\n"  # a command's own failure code (3) ends, like every failure, in exit 2
    assert res.code == 2 and res.err == "error: mdsample hello failed (it returned exit code 3)\n"
    assert "hello" in cli("list").out
    assert cli("--domain", "toy", "--sampler", "eb", "--out", tmp_path / "r", "--no-progress").code == 0
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["mean_length"] == 8.0 and "not_for_toy" not in metrics


BROKEN = {
    "broken_import.py": "import a_module_that_does_not_exist\n",
    "broken_hook.py": """
        from mdsample.hookspecs import hookimpl

        @hookimpl
        def register_domains(register):
            raise ValueError("no domains today")
    """,
}


def make_site(tmp_path: Path) -> Path:
    """A directory that, on PYTHONPATH, installs three third-party plugins by entry point (two broken)."""
    site = tmp_path / "site"
    dist = site / "thirdparty-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[mdsample]\nbroken_import = broken_import\nbroken_hook = broken_hook\ntoy = toy_domain\n"
    )
    for name, source in BROKEN.items():
        (site / name).write_text(textwrap.dedent(source))
    return site


def mdsample_cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    """``mdsample ARGS`` in a fresh interpreter that sees the plugins of ``site``; runs in site's parent."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(TESTS), os.environ["PYTHONPATH"]]), COLUMNS="200")
    env["MDSAMPLE_PLUGINS"] = "samplers,toy,broken_import,broken_hook"
    cmd = [sys.executable, "-c", "import sys; from mdsample.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, env=env, cwd=site.parent, capture_output=True, text=True, timeout=120)


def test_broken_entry_point_plugins_are_listed_and_cli_keeps_working(tmp_path):
    site = make_site(tmp_path)
    res = mdsample_cli(site, "list")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    out = " ".join(res.stdout.split())
    assert "broken_import │ failed" in out and "broken_hook │ failed" in out and "toy │ loaded" in out
    assert "ModuleNotFoundError: No module named 'a_module_that_does_not_exist'" in out
    assert "register_domains raised ValueError: no domains today" in out

    res = mdsample_cli(site, "--domain", "toy", "--sampler", "klass", "--out", "run", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "run" / "samples.txt").read_text().splitlines() == ["abcdefab"] * 6
