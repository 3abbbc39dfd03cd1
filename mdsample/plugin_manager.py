"""The one PluginManager("mdsample"): entry-point loading, load-error isolation and the registries.

Built-in plugins (samplers, molecule, ...) come in through the same entry-point group as third-party ones, so a
built-in has no privileges a third party lacks. Loading is lazy and forgiving: a plugin that fails to import, or
whose hook raises, is recorded as a ``LoadProblem`` (plugin name + one line) and skipped, so one broken plugin never
takes the CLI down; ``mdsample list`` shows the problems. ``MDSAMPLE_PLUGINS`` (comma list; empty = none) pins
which entry points load, which keeps tests independent of whatever else is installed.

The registries hold descriptions (``mdsample.describe``), not the objects: ``domains()`` and ``samplers()`` never
import a domain or a rule, so listing and config checks stay fast. ``load_domain`` and ``get_rule`` import the real
object when a run needs it; a plugin whose module then fails to import is a one-line PluginError naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from mdsample import hookspecs
from mdsample.describe import DomainInfo, SamplerInfo
from mdsample.errors import MdsampleError, PluginError, UnknownChoiceError

GROUP = "mdsample"
ENV_VAR = "MDSAMPLE_PLUGINS"


@dataclass(frozen=True)
class LoadProblem:
    """A plugin that failed to import, a hook that raised, or a name registered twice."""

    plugin: str
    error: str
    fatal: bool = True  # the plugin contributed nothing through the failing step (False for a skipped duplicate)


@dataclass(frozen=True)
class Command:
    """A subcommand registered through ``register_commands``; ``configure`` and ``run`` may be given as
    ``"module:attribute"`` names, imported only when the command is used (so listing commands stays fast)."""

    name: str
    help: str
    configure: Callable[[Any], None] | str
    run: Callable[[Any], int] | str


class _State:
    """Everything built lazily, in one place so ``reset()`` can forget it all for tests."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.problems: list[LoadProblem] = []  # from loading entry points
        self.registries: dict[str, dict[str, tuple[Any, str]]] = {}
        self.hook_problems: dict[str, list[LoadProblem]] = {}  # per hook, rebuilt with its registry
        self.built: dict[tuple[str, str], Any] = {}  # (hook, name) -> the loaded Domain instance / Rule class
        self.entry_points_loaded = False


_state: _State | None = None


def _get() -> _State:
    global _state
    if _state is None:
        _state = _State()
    if not _state.entry_points_loaded:
        _state.entry_points_loaded = True
        _load_entry_points(_state)
    return _state


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pinned() -> set[str] | None:
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(state: _State) -> None:
    pinned = _pinned()
    for ep in entry_points(group=GROUP):
        if pinned is not None and ep.name not in pinned:
            continue
        if state.pm.has_plugin(ep.name) or any(p.plugin == ep.name for p in state.problems):
            state.problems.append(LoadProblem(ep.name, f"duplicate plugin name (entry point {ep.value})", False))
            continue
        try:
            state.pm.register(ep.load(), name=ep.name)
        except (Exception, SystemExit) as exc:  # a broken plugin (even one calling sys.exit) is reported
            state.problems.append(LoadProblem(ep.name, f"failed to load {ep.value}: {_one_line(exc)}"))


def reset() -> None:
    """Forget every plugin and registry (tests use it; the next access reloads the entry points)."""
    global _state
    _state = None


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object (a module or any object with ``@hookimpl`` methods) directly; for tests and scripts."""
    state = _get()
    state.pm.register(plugin, name=name)
    state.registries.clear()
    state.hook_problems.clear()
    state.built.clear()


def plugin_manager() -> pluggy.PluginManager:
    """The shared PluginManager, with the entry points loaded."""
    return _get().pm


def loaded_plugins() -> list[str]:
    """Names of the plugins that imported and whose hooks did not raise."""
    state = _get()
    failed = {p.plugin for p in problems() if p.fatal}
    return sorted(name for name, _ in state.pm.list_name_plugin() if name not in failed)


def problems() -> list[LoadProblem]:
    """Every load problem (import failures, raising hooks, duplicate names); calls every hook to find them."""
    state = _get()
    for hook in _KEYS:
        _registry(state, hook)
    return state.problems + [p for hook in _KEYS for p in state.hook_problems[hook]]


def _described(info_class: type, obj: Any) -> tuple[str, Any]:
    """(name, description) of a registered description, or of a Domain instance / Rule class registered directly."""
    info = obj if isinstance(obj, info_class) else info_class.of(obj)
    return info.name, info


# hook name -> how a registered object is named and kept
_KEYS: dict[str, Callable[..., tuple[str, Any]]] = {
    "register_domains": lambda domain: _described(DomainInfo, domain),
    "register_samplers": lambda rule: _described(SamplerInfo, rule),
    "register_metrics": lambda name, fn: (name, fn),
    "register_commands": lambda name, help, configure, run: (name, Command(name, help, configure, run)),
}


def _registry(state: _State, hook: str) -> dict[str, tuple[Any, str]]:
    """Call every implementation of ``hook`` separately so one that raises cannot hide the others."""
    if hook in state.registries:
        return state.registries[hook]
    registry: dict[str, tuple[Any, str]] = {}
    found_problems: list[LoadProblem] = []
    kind = hook.removeprefix("register_").rstrip("s")
    for impl in getattr(state.pm.hook, hook).get_hookimpls():  # registration order
        found: list[tuple[str, Any]] = []

        def register(*args: Any, _found: list = found, **kwargs: Any) -> None:
            _found.append(_KEYS[hook](*args, **kwargs))

        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except (Exception, SystemExit) as exc:  # a raising (or exiting) hook is reported, never fatal
            found_problems.append(LoadProblem(impl.plugin_name, f"{hook} raised {_one_line(exc)}"))
            continue
        for name, obj in found:
            if name in registry:
                owner = registry[name][1]
                msg = f"duplicate {kind} {name!r} (already registered by plugin {owner!r}); skipped"
                found_problems.append(LoadProblem(impl.plugin_name, msg, False))
            else:
                registry[name] = (obj, impl.plugin_name)
    state.registries[hook] = registry
    state.hook_problems[hook] = found_problems
    return registry


def domains() -> dict[str, tuple[DomainInfo, str]]:
    """Domain name -> (its DomainInfo, plugin name); imports no domain."""
    return _registry(_get(), "register_domains")


def samplers() -> dict[str, tuple[SamplerInfo, str]]:
    """Sampler name -> (its SamplerInfo, plugin name); imports no rule."""
    return _registry(_get(), "register_samplers")


def metrics() -> dict[str, tuple[Any, str]]:
    """Metric name -> (fn(objects, domain) -> float | None, plugin name)."""
    return _registry(_get(), "register_metrics")


def commands() -> dict[str, tuple[Command, str]]:
    """Command name -> (Command, plugin name)."""
    return _registry(_get(), "register_commands")


def available_domains() -> list[str]:
    """Names of the registered domains (the public ``mdsample.available_domains``; imports no domain)."""
    return sorted(domains())


def available_samplers() -> list[str]:
    """Names of the registered samplers, i.e. selection rules (``mdsample.available_samplers``; imports no rule)."""
    return sorted(samplers())


def domain_info(name: str) -> DomainInfo:
    """The description of the domain ``name``; UnknownChoiceError lists the registered ones."""
    found = domains()
    if name not in found:
        raise UnknownChoiceError("domain", name, list(found))
    return found[name][0]


def sampler_info(name: str) -> SamplerInfo:
    """The description of the sampler ``name``; UnknownChoiceError lists the registered ones."""
    found = samplers()
    if name not in found:
        raise UnknownChoiceError("sampler", name, list(found))
    return found[name][0]


def _build(hook: str, kind: str, name: str) -> Any:
    """The object behind a description, imported once; an import that fails is a PluginError naming the plugin."""
    state = _get()
    key = (hook, name)
    if key not in state.built:
        info, plugin = _registry(state, hook)[name]
        try:
            built = info.build()
        except MdsampleError:
            raise
        except (Exception, SystemExit) as exc:  # a plugin whose module is broken fails this run, by its name
            raise PluginError(f"plugin {plugin!r} could not load {kind} {name!r}: {_one_line(exc)}") from exc
        if getattr(built, "name", None) != name:
            raise PluginError(f"plugin {plugin!r} described {kind} {name!r} but loaded one called "
                              f"{getattr(built, 'name', None)!r}")
        state.built[key] = built
    return state.built[key]


def load_domain(name: str) -> Any:
    """The registered Domain called ``name`` (its module imported now); UnknownChoiceError lists the registered."""
    domain_info(name)
    return _build("register_domains", "domain", name)


def get_rule(name: str) -> Any:
    """The registered Rule subclass called ``name`` (imported now); UnknownChoiceError lists the registered ones."""
    sampler_info(name)
    return _build("register_samplers", "sampler", name)
