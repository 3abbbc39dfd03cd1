"""The MdsampleError family: every error a user can fix, with a one-line actionable message.

The CLI maps any MdsampleError to exit code 2 and prints only its message (the traceback only with --debug), so
each message must name the problem and, where there is a finite set of valid choices, list them.
"""

from __future__ import annotations


class MdsampleError(Exception):
    """Base class of every user-facing error of mdsample. ``hint``: an optional second line (what to try)."""

    hint: str | None = None


class UsageError(MdsampleError):
    """A command line that does not parse: an unknown option, a missing or malformed argument."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class ConfigError(MdsampleError):
    """An unknown key, a bad value or an inconsistent combination of settings."""


class UnknownChoiceError(ConfigError):
    """A name (domain, sampler, task, representation, ...) that is not among the registered choices."""

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...]):
        self.kind, self.name, self.choices = kind, name, sorted(choices)
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(self.choices) or '(none registered)'}")


class MissingFileError(MdsampleError):
    """A file or directory the user named (or that a command needs) does not exist."""


class BrokenFileError(MdsampleError):
    """A file that exists but cannot be read as what it should be (truncated weights, corrupt JSON or YAML)."""

    def __init__(self, path: object, what: str, reason: BaseException | str):
        text = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        super().__init__(f"{what} {str(path)!r} is broken ({' '.join(str(text).split())}); "
                         "replace or re-create it")
        self.path = path


class DataNotPreparedError(MissingFileError):
    """Data that must be prepared first (e.g. `mdsample data --domain molecule`) is absent."""


class PluginError(MdsampleError):
    """A plugin misbehaved so that the requested action cannot go on (not raised for plugins failing to load)."""
