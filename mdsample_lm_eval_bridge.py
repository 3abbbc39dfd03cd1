"""Lets ``lm_eval --model mdsample`` find mdsample in lm-evaluation-harness releases that predate model plugins.

mdsample declares its lm_eval model the way lm-evaluation-harness's plugin guide asks: an ``lm_eval.models`` entry
point (``mdsample = mdsample.integrations.lm_eval:MDSampleLM``). lm_eval reads that group only since its plugin
registration (upstream PR #4013); the 0.4.x releases on PyPI up to 0.4.13 never look. For those, the
``mdsample_lm_eval.pth`` file installed beside this module imports it at interpreter start-up, and it waits, doing
nothing else, until lm_eval's model registry is imported; it then registers every ``lm_eval.models`` entry point
whose name is still free, as the placeholder string lm_eval itself uses for lazy models (so no plugin code is
imported until a run asks for that model). When the registry can discover plugins itself, it does nothing.

Kept outside the ``mdsample`` package, standard library only: it runs in every interpreter of the environment.
"""

import importlib.abc
import importlib.util
import sys

TARGET = "lm_eval.api.registry"


def register_entry_points(registry) -> None:
    """Register the free ``lm_eval.models`` entry points in ``registry`` (an imported ``lm_eval.api.registry``)."""
    if hasattr(registry, "import_plugins") or hasattr(registry, "discover_plugins"):
        return
    from importlib.metadata import entry_points

    import lm_eval.models  # noqa: F401  the built-ins first: lm_eval only imports them into an empty registry

    for ep in entry_points(group="lm_eval.models"):
        if ep.name not in registry.model_registry:
            registry.model_registry.register(ep.name, target=ep.value)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        try:
            register_entry_points(module)
        except Exception as err:  # never break lm_eval itself over a plugin
            print(f"mdsample_lm_eval_bridge: could not register lm_eval.models entry points: {err}", file=sys.stderr)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of lm_eval's registry module once, then steps aside."""

    def find_spec(self, name, path, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    if TARGET not in sys.modules and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
