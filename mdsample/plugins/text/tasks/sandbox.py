"""Running model-written programs (HumanEval, MBPP) so that whatever they do counts as a failure, never as harm.

Off unless the user opts in (``domain.allow_code_execution=true`` or ``MDSAMPLE_ALLOW_CODE_EXECUTION=1``). Each
program runs in its own process:

* in a fresh temporary directory (its working directory, ``HOME`` and ``TMPDIR``), removed afterwards;
* as ``nobody`` when the grader runs as root (so it cannot touch the grader's files or signal its processes), in a
  new session whose whole process group is killed at the end;
* in a pids cgroup of its own (``pids.max``) where one can be made (root, a writable cgroup hierarchy): the kernel
  never applies RLIMIT_NPROC to root, so this is what caps a root program's processes; everything in it is killed;
* with rlimits on CPU seconds, address space, file size and process count, and a wall-clock timeout;
* in a new network namespace (no interfaces but a down loopback) where the kernel allows one to be made;
* behind ``sandbox_guard``'s audit hook: no new processes, signals, ctypes, sockets or writes outside its directory;
* with its output going to size-limited files, of which only the tail is read back.

It passes only if it exits with status 0 *and* printed the one-time token the guard prints after the program
returned (see sandbox_guard.py), so ``sys.exit(0)`` or ``os._exit(0)`` before the tests ran is a failure.
"""

from __future__ import annotations

import ctypes
import os
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mdsample.errors import ConfigError

ENABLE_ENV = "MDSAMPLE_ALLOW_CODE_EXECUTION"
ENABLE_KEY = "domain.allow_code_execution=true"
GUARD = (Path(__file__).with_name("sandbox_guard.py")).read_text()
CLONE_NEWNET = 0x40000000
CGROUP_ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))  # cgroup v1 pids hierarchy, then v2
TAIL = 2000


@dataclass(frozen=True)
class Limits:
    """Per program: wall-clock seconds, CPU seconds, address space (bytes), largest file (bytes), processes."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory: int = 2 << 30
    file_size: int = 16 << 20
    processes: int = 64


@dataclass(frozen=True)
class Outcome:
    """``passed``; ``status``: passed, failed, timeout or killed by a signal; ``detail``: the stderr tail."""

    passed: bool
    status: str
    detail: str = ""


def enabled(option: bool) -> bool:
    """Whether the user allowed code execution, by the option or the environment variable."""
    return option or os.environ.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes")


def require_enabled(option: bool, task: str) -> None:
    """ConfigError naming both switches unless code execution was allowed."""
    if not enabled(option):
        raise ConfigError(f"task {task!r} runs model-written code, which is off by default; allow it with "
                          f"{ENABLE_KEY} or {ENABLE_ENV}=1 (each program then runs in a limited, sandboxed process)")


def _reachable(path: str, file_bits: int) -> bool:
    """Whether users other than the owner can reach ``path`` (every parent searchable, the file with its bits)."""
    real = Path(os.path.realpath(path))
    dirs_ok = all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    return dirs_ok and real.stat().st_mode & file_bits == file_bits


def _nobody() -> tuple[int, int] | None:
    """(uid, gid) of ``nobody`` when the grader is root and ``nobody`` can run this interpreter, else None.

    Without a user switch (an interpreter inside root's home, say) the program keeps the grader's user; the guard's
    audit hook and the rlimits other than the process count (which the kernel never applies to root) still hold.
    """
    if os.geteuid() != 0:
        return None
    if not (_reachable(sys.executable, stat.S_IXOTH) and _reachable(os.__file__, stat.S_IROTH)):
        return None
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _pids_cgroup(name: str, limit: int) -> Path | None:
    """A new cgroup allowing ``limit`` tasks, or None where no pids controller is writable."""
    for root in CGROUP_ROOTS:
        group = root / name
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            (group / "pids.max").write_text(str(limit))
            return group
        except OSError:
            group.rmdir()
    return None


def _empty_cgroup(group: Path) -> None:
    """SIGKILL whatever is left in the cgroup (also processes that left the session), then remove it."""
    for _ in range(100):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    try:
        group.rmdir()
    except OSError:
        pass


def _confine(limits: Limits, user: tuple[int, int] | None, group: Path | None) -> None:
    """Runs in the child between fork and exec: cgroup, network namespace, rlimits, then the unprivileged user."""
    if group is not None:
        (group / "cgroup.procs").write_text("0")
    try:
        ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)  # fails quietly where not permitted
    except OSError:
        pass
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if user is not None:
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - TAIL))
        return f.read().decode(errors="replace")


def run_program(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as ``__main__`` in the sandbox; passed iff it returned normally (see the module docstring)."""
    user = _nobody()
    workdir = Path(tempfile.mkdtemp(prefix="mdsample-exec-"))
    token = secrets.token_hex(16)
    group = _pids_cgroup(workdir.name, limits.processes) if os.geteuid() == 0 else None
    try:
        (workdir / "program.py").write_text(source)
        if user is not None:
            os.chown(workdir, *user)
            os.chown(workdir / "program.py", *user)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir), "LANG": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        with open(workdir / ".stdout", "wb") as out, open(workdir / ".stderr", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", GUARD, "program.py"], cwd=workdir, env=env, stdin=subprocess.PIPE,
                stdout=out, stderr=err, start_new_session=True,
                preexec_fn=lambda: _confine(limits, user, group))
            try:
                proc.stdin.write(f"{token}\n".encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                code = proc.wait(timeout=limits.wall_s)
                status = None
            except subprocess.TimeoutExpired:
                code, status = None, "timeout"
            finally:
                _kill_group(proc)
        stdout, detail = _tail(workdir / ".stdout"), _tail(workdir / ".stderr")
        if status is None:
            printed = stdout.rstrip().endswith(token)
            status = "passed" if code == 0 and printed else (
                f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else "failed")
        return Outcome(status == "passed", status, detail.strip()[-TAIL:])
    finally:
        if group is not None:
            _empty_cgroup(group)
        shutil.rmtree(workdir, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the program's whole process group (it may have left children behind), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_programs(sources: list[str], limits: Limits = Limits(), workers: int | None = None) -> list[Outcome]:
    """``run_program`` over many programs, a few at a time (each is its own process)."""
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda s: run_program(s, limits), sources))
