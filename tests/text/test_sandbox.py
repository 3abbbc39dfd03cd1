"""The code-execution sandbox: every misbehaviour of a program is a failure, and the grader is never harmed."""

from __future__ import annotations

import os
import time

import pytest

from mdsample.errors import ConfigError
from mdsample.plugins.text.tasks.sandbox import ENABLE_ENV, Limits, require_enabled, run_program, run_programs

FAST = Limits(wall_s=3.0, cpu_s=3, memory=1 << 30, file_size=1 << 20)


def test_a_correct_program_passes_and_a_failing_assert_fails():
    assert run_program("def f(x):\n    return x + 1\nassert f(1) == 2\n", FAST).passed
    failed = run_program("assert 1 == 2\n", FAST)
    assert not failed.passed and failed.status == "failed" and "AssertionError" in failed.detail


def test_infinite_loop_times_out():
    start = time.monotonic()
    outcome = run_program("while True:\n    pass\n", Limits(wall_s=1.0, cpu_s=5))
    assert not outcome.passed and outcome.status == "timeout" and time.monotonic() - start < 5


def test_crash_is_a_failure():
    outcome = run_program("import faulthandler\nfaulthandler._sigsegv()\n", FAST)
    assert not outcome.passed and outcome.status == "killed by SIGSEGV"


def test_fork_bomb_is_stopped():
    outcome = run_program("import os\nwhile True:\n    os.fork()\n", FAST)
    assert not outcome.passed and "os.fork is not allowed" in outcome.detail


def test_huge_output_is_cut_off():
    outcome = run_program("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", FAST)
    assert not outcome.passed and "File too large" in outcome.detail


def test_killing_the_parent_fails_and_the_grader_lives():
    outcome = run_program("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", FAST)
    assert not outcome.passed and "os.kill is not allowed" in outcome.detail
    assert os.getpid()  # still here


def test_writes_outside_the_directory_fail_and_leave_nothing(tmp_path):
    target = tmp_path / "escaped.txt"
    outcome = run_program(f"open({str(target)!r}, 'w').write('x')\n", FAST)
    assert not outcome.passed and "outside the sandbox directory" in outcome.detail and not target.exists()
    assert run_program("open('inside.txt', 'w').write('x')\nassert open('inside.txt').read() == 'x'\n", FAST).passed


def test_exiting_before_the_tests_ran_is_a_failure():
    assert not run_program("import sys\nsys.exit(0)\nassert False\n", FAST).passed
    assert not run_program("import os\nos._exit(0)\n", FAST).passed


def test_memory_and_network_are_limited():
    assert "MemoryError" in run_program("x = bytearray(4 << 30)\n", FAST).detail
    assert not run_program("import socket\nsocket.create_connection(('127.0.0.1', 9))\n", FAST).passed


def test_many_programs_in_order():
    outcomes = run_programs(["assert True", "assert False", "assert 2 > 1"], FAST, workers=2)
    assert [o.passed for o in outcomes] == [True, False, True]


def test_off_unless_enabled(monkeypatch):
    monkeypatch.delenv(ENABLE_ENV, raising=False)
    with pytest.raises(ConfigError, match=rf"domain.allow_code_execution=true or {ENABLE_ENV}=1"):
        require_enabled(False, "humaneval")
    require_enabled(True, "humaneval")
    monkeypatch.setenv(ENABLE_ENV, "1")
    require_enabled(False, "humaneval")


def test_a_root_program_gets_a_pids_cgroup_that_is_removed(tmp_path):
    from mdsample.plugins.text.tasks.sandbox import CGROUP_ROOTS, _pids_cgroup

    probe = _pids_cgroup(f"mdsample-probe-{os.getpid()}", 1) if os.geteuid() == 0 else None
    if probe is None:
        pytest.skip("needs root and a writable pids cgroup hierarchy")
    probe.rmdir()
    program = ("import os\n"
               "lines = open('/proc/self/cgroup').read().splitlines()\n"
               "path = next(l.split(':', 2)[2] for l in lines if ':pids:' in l or l.startswith('0::'))\n"
               f"files = [r + path + '/pids.max' for r in {[str(r) for r in CGROUP_ROOTS]!r}]\n"
               "limit = next(open(f).read() for f in files if os.path.exists(f))\n"
               "assert limit.strip() == '7', limit\n")
    assert run_program(program, Limits(wall_s=3.0, processes=7)).passed
    left = [p for root in CGROUP_ROOTS if root.is_dir() for p in root.iterdir() if p.name.startswith("mdsample-exec-")]
    assert not left
