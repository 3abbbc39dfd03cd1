"""How conformance checks fail: one ``Failure`` per check (which check, what was expected, what was seen).

Checks share expensive work (loading the model, decoding a batch) through a ``Probe``: each piece is computed once,
by the first check that needs it. When that piece fails, the check that owns it reports the real error and every
other check that needs it is reported as *blocked* by it, so one broken ``load_denoiser`` reads as one failure
plus a list of checks that could not run, not as a dozen copies of the same traceback. All failures of a subject
are collected and raised together as one ``ConformanceError`` (an AssertionError, so pytest shows it as a failed
assertion).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIT_DIR = Path(__file__).resolve().parent
# Where the subject's own code lives (its package directory, or its module file): tracebacks point there first.
_focus: ContextVar[Path | None] = ContextVar("mdsample_testing_focus", default=None)

Check = Callable[[], None]


@dataclass(frozen=True)
class Failure:
    """One failed check: ``expected`` says what the contract asks, ``seen`` what the subject did instead.

    ``blocked_by`` names the check whose failure kept this one from running (then ``seen`` repeats that reason).
    """

    check: str
    expected: str
    seen: str
    blocked_by: str | None = None

    def __str__(self) -> str:
        if self.blocked_by:
            return f"{self.check}: not run, it needs {self.blocked_by!r}, which failed"
        return f"{self.check}: expected {self.expected}; saw {self.seen}"


class CheckFailed(Exception):
    """Raised inside a check: the contract says ``expected`` but the subject gave ``seen``."""

    def __init__(self, expected: str, seen: str):
        super().__init__(f"expected {expected}; saw {seen}")
        self.expected, self.seen = expected, seen


class Blocked(Exception):
    """Raised by a probe when the step a check needs failed in the check that owns it."""

    def __init__(self, owner: str, failure: CheckFailed):
        super().__init__(f"needs {owner!r}, which failed: {failure}")
        self.owner, self.failure = owner, failure


class ConformanceError(AssertionError):
    """Every failed check of one subject; ``failures`` holds them as ``Failure`` records."""

    def __init__(self, subject: str, failures: list[Failure], total: int):
        self.subject, self.failures, self.total = subject, failures, total
        real = [f for f in failures if not f.blocked_by]
        lines = [f"{subject} fails {len(real)} of {total} conformance checks:"]
        lines += [f"  - {f}" for f in real]
        blocked = [f for f in failures if f.blocked_by]
        if blocked:
            lines.append(f"  not run because a check they need failed: {', '.join(f.check for f in blocked)}")
        super().__init__("\n".join(lines))


def source_of(subject: object) -> Path | None:
    """The directory of the package defining ``subject``'s class (or the module file of a top-level module)."""
    cls = subject if isinstance(subject, type) else type(subject)
    name = cls.__module__
    module = sys.modules.get(name.rpartition(".")[0] or name)
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    return Path(file).resolve().parent if "." in name else Path(file).resolve()


def focused(check: Check, source: Path | None) -> Check:
    """``check`` with ``source`` as the place tracebacks should point to while it runs."""

    def run() -> None:
        token = _focus.set(source)
        try:
            check()
        finally:
            _focus.reset(token)

    return run


def _where(frame: traceback.FrameSummary) -> str:
    return f"{'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno} in {frame.name}"


def describe(exc: BaseException) -> str:
    """``Type: message (at file:line in function)``: the deepest frame in the subject's own code, plus the frame
    that raised when that lies elsewhere (a library the subject called)."""
    text = " ".join(str(exc).split())
    head = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not Path(f.filename).resolve().is_relative_to(KIT_DIR)]
    if not frames:
        return head
    source = _focus.get()
    own = [f for f in frames if source is not None and Path(f.filename).resolve().is_relative_to(source)]
    if not own or own[-1] is frames[-1]:
        return f"{head} (at {_where(frames[-1])})"
    return f"{head} (at {_where(own[-1])}; raised at {_where(frames[-1])})"


def expect(condition: Any, expected: str, seen: str | Callable[[], str]) -> None:
    """Raise CheckFailed(expected, seen) unless ``condition``; ``seen`` may be a callable, built only on failure."""
    if not condition:
        raise CheckFailed(expected, seen() if callable(seen) else seen)


def guarded(expected: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, with any exception it raises turned into CheckFailed(expected, <what was raised, and where>)."""
    try:
        return fn()
    except (CheckFailed, Blocked):
        raise
    except Exception as exc:
        raise CheckFailed(expected, describe(exc)) from exc


class Probe:
    """Memoised steps shared by the checks of one subject: ``step(name, owner, fn, caller)`` runs ``fn`` once.

    A step that raised CheckFailed re-raises it when ``caller`` is its ``owner`` (the check that reports it) and
    raises ``Blocked`` for every other caller. A step blocked by another step is retried on the next call.
    """

    def __init__(self) -> None:
        self._done: dict[str, Any] = {}
        self._failed: dict[str, tuple[str, CheckFailed]] = {}

    def step(self, name: str, owner: str, fn: Callable[[], Any], caller: str) -> Any:
        if name in self._done:
            return self._done[name]
        if name not in self._failed:
            try:
                self._done[name] = fn()
                return self._done[name]
            except CheckFailed as failure:
                self._failed[name] = (owner, failure)
        owner, failure = self._failed[name]
        if caller == owner:
            raise failure
        raise Blocked(owner, failure)


def run_all(subject: str, checks: list[tuple[str, Check]]) -> None:
    """Run every check, collect the failures, raise one ConformanceError listing them all (or return)."""
    failures = [f for f in (outcome(name, check) for name, check in checks) if f is not None]
    if failures:
        raise ConformanceError(subject, failures, len(checks))


def outcome(name: str, check: Check) -> Failure | None:
    """The Failure of one check, or None when it passes."""
    try:
        check()
    except CheckFailed as failed:
        return Failure(name, failed.expected, failed.seen)
    except Blocked as blocked:
        return Failure(name, blocked.failure.expected, blocked.failure.seen, blocked_by=blocked.owner)
    except Exception as exc:  # a check that did not guard a call into the subject: still reported, not raised
        return Failure(name, "no exception", describe(exc))
    return None


def single(name: str, check: Check) -> Check:
    """``check`` as a standalone callable for pytest: raises ConformanceError naming only this check."""

    def run() -> None:
        failure = outcome(name, check)
        if failure is not None:
            if failure.blocked_by:
                failure = Failure(name, failure.expected, f"{failure.blocked_by!r} failed: {failure.seen}")
            raise ConformanceError(name, [failure], 1)

    run.__name__ = name
    return run


def named(checks: list[tuple[str, Check]]) -> Iterator[tuple[str, Check]]:
    """(name, standalone callable) pairs, as ``conformance_checks`` yields them."""
    for name, check in checks:
        yield name, single(name, check)
