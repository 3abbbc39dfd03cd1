"""Structured run configs: typed defaults, package YAML, domain defaults, user YAML, CLI flags, dotlist overrides.

The schema of the ``domain`` and ``sampler`` nodes depends on which domain and rule are chosen (each brings its own
options dataclass), so resolution is two-phase: the names are read from the raw layers first (last one wins), then
a typed schema is built for that pair and every layer is merged into it in order:

    structured defaults -> configs/defaults.yaml -> domain.defaults() -> --config FILE -> CLI flags -> key=value

Each layer is checked against the schema before it is merged, so a typo or a bad value becomes a one-line
ConfigError that names the key, the layer it came from and the valid keys of its node. The schema comes from the
plugins' descriptions (mdsample.describe), and the resolved options are built once into the domain's and the
rule's dataclasses (whose ``__post_init__`` may reject values), all before torch or a domain is imported.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field, make_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mdsample import plugin_manager
from mdsample.core.choices import CACHE_MODES, CAPTURE_MODES, COMPILE_MODES, CONFIDENCES, CORRECT_PICKS
from mdsample.describe import DomainInfo, SamplerInfo
from mdsample.errors import ConfigError, MissingFileError, PluginError, UnknownChoiceError

PACKAGE_DEFAULTS = Path(__file__).parent / "configs" / "defaults.yaml"
STATS_DTYPES = ("float32", "float64")
DOMAIN_DEFAULT_KEYS = ("decode", "n", "samplers")
Layer = tuple[str, dict[str, Any]]  # (where it came from, nested mapping)


@dataclass
class DecodeConfig:
    """How decode() runs: ``steps``/``block_length`` None mean the generation length (one token per step, one block)."""

    steps: int | None = None
    block_length: int | None = None
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    stats_dtype: str = "float32"
    confidence: str = "drawn"
    early_exit: float | None = None
    answer_first: bool = False
    cache: str = "none"
    cache_refresh: int = 0
    capture: str = "auto"
    compile: str = "off"
    sync_every: str = "auto"
    correct_steps: int = 0
    correct_positions: int = 2
    correct_pick: str = "random"


@dataclass
class DomainNode:
    """``domain.name`` plus, once resolved, the fields of the chosen domain's ``Options``."""

    name: str = "molecule"


@dataclass
class SamplerNode:
    """``sampler.name`` plus, once resolved, the fields of the chosen rule's ``Config``."""

    name: str = "klass"


@dataclass
class RunConfig:
    """Top level of a generation run. ``out`` None means runs/<domain>-<sampler>-<YYYYmmdd-HHMMSS>."""

    n: int = 64
    seed: int = 0
    device: str = "auto"
    batch_size: int = 256
    out: str | None = None
    progress: bool = True
    trace: bool = False
    debug: bool = False
    domain: DomainNode = field(default_factory=DomainNode)
    sampler: SamplerNode = field(default_factory=SamplerNode)
    decode: DecodeConfig = field(default_factory=DecodeConfig)


# ---------------------------------------------------------------------------------------------------------- layers


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file as a nested dict: MissingFileError if absent, ConfigError if it is not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"config file {str(path)!r} does not exist")
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"cannot parse config file {str(path)!r}: {' '.join(str(exc).split())}") from exc
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, not a list")
    data = OmegaConf.to_container(loaded)
    _check_names(data, path)
    return data


def _check_names(node: Any, path: Path, where: str = "") -> None:
    """Every key of a loaded YAML mapping is a name (YAML also allows numbers, booleans and null as keys)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise ConfigError(f"config file {str(path)!r}: key {key!r}{f' under {where!r}' if where else ''} "
                                  "is not a name; keys are words like decode or steps")
            _check_names(value, path, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for item in node:
            _check_names(item, path, where)


def parse_dotlist(items: typing.Iterable[str]) -> dict[str, Any]:
    """``["sampler.kl_threshold=0.005", "decode.steps=32"]`` -> nested dict (values parsed as YAML)."""
    items = list(items)
    for item in items:
        key = item.split("=", 1)[0]
        if "=" not in item or not key or key.startswith(".") or key.endswith("."):
            raise ConfigError(f"override {item!r} must look like key=value, e.g. decode.steps=32")
    merged = OmegaConf.create()
    for item in items:
        try:
            merged = OmegaConf.merge(merged, OmegaConf.from_dotlist([item]))
        except Exception as exc:  # YAML or omegaconf refusing the value: name the override, not the parser
            raise ConfigError(f"override {item!r} is not a valid value: {_first_line(exc)}; quote strings, e.g. "
                              "key='text'") from None
    return OmegaConf.to_container(merged)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "msg", None) or exc).strip().splitlines()
    return " ".join(text[0].split()) if text else type(exc).__name__


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"decode.steps": 32, "sampler": {"k_max": 4}}`` -> nested dict; None values are dropped (flag not given)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        *parents, last = key.split(".")
        node = out
        for depth, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                section = ".".join(parents[: depth + 1])
                raise ConfigError(f"{section!r} is a section of options (set {section}.KEY=VALUE), not a value; "
                                  f"got {section}={node!r}")
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last].update(value)
        else:
            node[last] = value
    return out


def _lookup(layers: list[Layer], *path: str) -> Any:
    """The value at ``path`` in the last layer that sets it (None if none does)."""
    found = None
    for _, layer in layers:
        node: Any = layer
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            found = node
    return found


def _name(layers: list[Layer], node: str) -> str | None:
    """``domain.name`` / ``sampler.name`` as the layers set it; a value that is not a plain name is a ConfigError."""
    value = _lookup(layers, node, "name")
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{node}.name must be a name, got {value!r}; see `mdsample list`")
    return value


# ---------------------------------------------------------------------------------------------------------- schema


def _omegaconf_type(tp: Any) -> Any:
    """``tp`` where omegaconf can type-check it, else Any (the value is then passed through unchecked)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return tp if len(args) == 1 and _omegaconf_type(args[0]) is args[0] else Any
    if origin in (list, dict, tuple):
        return tp
    simple = tp in (int, float, bool, str, bytes, Path)
    return tp if simple or (isinstance(tp, type) and (issubclass(tp, Enum) or dataclasses.is_dataclass(tp))) else Any


def dataclass_fields(options: type) -> list[tuple[str, Any, Any]]:
    """The fields of the dataclass ``options`` for make_dataclass, with types omegaconf can check (else Any)."""
    hints = typing.get_type_hints(options)
    fields = []
    for f in dataclasses.fields(options):
        default = {"default": f.default} if f.default is not dataclasses.MISSING else {}
        if f.default_factory is not dataclasses.MISSING:
            default = {"default_factory": f.default_factory}
        fields.append((f.name, _omegaconf_type(hints[f.name]), field(**default)))
    return fields


def node_schema(base: type, name: str, options: type) -> type:
    """A dataclass ``base`` (with ``name``) extended by the fields of the dataclass ``options``."""
    fields = dataclass_fields(options)
    if any(f[0] == "name" for f in fields):
        raise PluginError(f"{options.__qualname__} may not have a field called 'name': it is the node's own key")
    name_field = ("name", str, field(default=name))
    return make_dataclass(f"{options.__name__}Node", [name_field, *fields], bases=(base,))


def run_schema(domain: DomainInfo, rule: SamplerInfo) -> type:
    """RunConfig whose ``domain`` and ``sampler`` nodes carry the options of the chosen domain and rule."""
    dom = node_schema(DomainNode, domain.name, domain.options)
    smp = node_schema(SamplerNode, rule.name, rule.config)
    fields = [("domain", dom, field(default_factory=dom)), ("sampler", smp, field(default_factory=smp))]
    return make_dataclass("ResolvedRunConfig", fields, bases=(RunConfig,))


# ---------------------------------------------------------------------------------------------------------- merging


def _valid(node: DictConfig, path: str) -> str:
    return f"valid keys of {path or 'the top level'}: {', '.join(sorted(str(k) for k in node.keys()))}"


def _check_keys(node: DictConfig, layer: dict[str, Any], source: str, prefix: str = "") -> None:
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if key not in node:
            raise ConfigError(f"unknown config key {path!r} (from {source}); {_valid(node, prefix.rstrip('.'))}")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not isinstance(value, dict):
            raise ConfigError(f"{path!r} (from {source}) is a section of options, not a value: set {path}.KEY=VALUE; "
                              f"{_valid(child, path)}")
        if isinstance(child, DictConfig):
            _check_keys(child, value, source, f"{path}.")


def merge_layers(schema: type, layers: list[Layer]) -> DictConfig:
    """Merge ``layers`` in order onto the structured ``schema``; unknown keys and bad values raise ConfigError."""
    cfg = OmegaConf.structured(schema)
    for source, layer in layers:
        _check_keys(cfg, layer, source)
        try:
            cfg = OmegaConf.merge(cfg, layer)
        except OmegaConfBaseException as exc:
            key = str(getattr(exc, "full_key", "") or "")
            parent = key.rpartition(".")[0]
            node = OmegaConf.select(cfg, parent) if parent else cfg
            reason = str(getattr(exc, "msg", exc)).splitlines()[0]
            raise ConfigError(f"bad value for {key!r} (from {source}): {reason}; {_valid(node, parent)}") from None
    try:  # ${...} interpolations, resolved once here so that a dangling one is named now, not on first use
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "")
        raise ConfigError(f"cannot resolve the value of {key!r}: {_first_line(exc)}; a ${{...}} interpolation must "
                          "name an existing key (or quote the text)") from None
    return cfg


def _domain_layer(domain: DomainInfo, rule_name: str) -> dict[str, Any]:
    defaults = dict(domain.defaults or {})
    extra = sorted(set(defaults) - set(DOMAIN_DEFAULT_KEYS))
    if extra:
        raise PluginError(
            f"domain {domain.name!r}: defaults() has unknown keys {', '.join(extra)}; allowed: "
            + ", ".join(DOMAIN_DEFAULT_KEYS)
        )
    layer = {k: defaults[k] for k in ("decode", "n") if k in defaults}
    sampler = (defaults.get("samplers") or {}).get(rule_name)
    if sampler:
        layer["sampler"] = dict(sampler)
    return layer


def check_options(node: DictConfig, options: type, what: str) -> None:
    """Build the ``options`` dataclass from ``node`` once, so that its own checks (``__post_init__``) run now; a
    plain TypeError or ValueError from it becomes a ConfigError naming ``what``."""
    try:
        options(**options_of(node))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad {what} options: {' '.join(str(exc).split())}") from None


def check_task(domain: DomainInfo, task: str | None) -> None:
    """``domain.task`` must be one of the tasks the domain describes (None: its default)."""
    if task is not None and domain.tasks and task not in domain.tasks:
        raise UnknownChoiceError(f"{domain.name} task", task, domain.tasks)


DEVICE = re.compile(r"auto|cpu|mps|meta|(cuda|xpu)(:\d+)?")


def check_device(name: str, key: str = "device") -> None:
    """A device name torch would accept (whether it is present is checked when the run starts)."""
    if not DEVICE.fullmatch(str(name)):
        raise ConfigError(f"{key}={name!r} is not a device; use auto, cpu, cuda or cuda:N (also mps, xpu[:N])")


def check_out_dir(path: str | None, what: str) -> None:
    """``path`` can be (or already is) a directory that we may write into; checked before anything is loaded."""
    if path is None:
        return
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{what} {path!r} exists and is not a directory; give a directory path")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {path!r}: {str(existing)!r} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK) or str(existing.resolve()).startswith(("/proc", "/sys")):
        raise ConfigError(f"{what} {path!r}: cannot create or write into {str(existing)!r}; choose another directory")


def _validate(cfg: DictConfig) -> None:
    if cfg.decode.stats_dtype not in STATS_DTYPES:
        raise UnknownChoiceError("decode.stats_dtype", cfg.decode.stats_dtype, STATS_DTYPES)
    if cfg.decode.confidence not in CONFIDENCES:
        raise UnknownChoiceError("decode.confidence", cfg.decode.confidence, CONFIDENCES)
    if cfg.decode.cache not in CACHE_MODES:
        raise UnknownChoiceError("decode.cache", cfg.decode.cache, CACHE_MODES)
    # YAML 1.1 reads a bare on / off as a boolean, which the str field then holds as "True" / "False"
    for key, modes in (("capture", CAPTURE_MODES), ("compile", COMPILE_MODES)):
        cfg.decode[key] = {"True": "on", "False": "off"}.get(cfg.decode[key], cfg.decode[key])
        if cfg.decode[key] not in modes:
            raise UnknownChoiceError(f"decode.{key}", cfg.decode[key], modes)
    if cfg.decode.correct_pick not in CORRECT_PICKS:
        raise UnknownChoiceError("decode.correct_pick", cfg.decode.correct_pick, CORRECT_PICKS)
    if cfg.decode.cache_refresh < 0:
        raise ConfigError(f"decode.cache_refresh must be >= 0 (0: only at block boundaries), "
                          f"got {cfg.decode.cache_refresh}")
    every = str(cfg.decode.sync_every)
    if every != "auto" and not (every.isdigit() and int(every) >= 1):
        raise ConfigError(f"decode.sync_every must be auto or an integer >= 1 (1: sync every step), got {every}")
    for key in ("n", "batch_size"):
        if cfg[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {cfg[key]}")


def resolve_config(
    domain: str | None = None,
    sampler: str | None = None,
    *,
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    dotlist: typing.Iterable[str] = (),
) -> DictConfig:
    """The resolved run config. ``flags`` is a (possibly dotted) mapping of values set by CLI flags or API kwargs.

    ``domain``/``sampler`` belong to the flags layer; any layer may also set ``domain.name``/``sampler.name``.
    """
    user: list[Layer] = [] if config_file is None else [(f"config file {str(config_file)!r}", load_yaml(config_file))]
    user.append(("arguments", nest({**(flags or {}), "domain.name": domain, "sampler.name": sampler})))
    user.append(("overrides", parse_dotlist(dotlist)))
    base: list[Layer] = [("package defaults", load_yaml(PACKAGE_DEFAULTS))]
    raw = base + user
    dom = plugin_manager.domain_info(_name(raw, "domain") or DomainNode.name)
    rule = plugin_manager.sampler_info(_name(raw, "sampler") or SamplerNode.name)
    layers = [*base, (f"domain {dom.name!r} defaults", _domain_layer(dom, rule.name)), *user]
    cfg = merge_layers(run_schema(dom, rule), layers)
    _validate(cfg)
    check_task(dom, cfg.domain.task)
    check_options(cfg.domain, dom.options, f"domain {dom.name!r}")
    check_options(cfg.sampler, rule.config, f"sampler {rule.name!r}")
    return cfg


def resolve_train_config(
    domain: str | None,
    train_config: type,
    *,
    config_file: str | Path | None = None,
    flags: dict[str, Any] | None = None,
    dotlist: typing.Iterable[str] = (),
) -> DictConfig:
    """The config of ``mdsample train``: ``out``, ``debug``, the ``domain`` node and ``train`` (a ``train_config``)."""
    layers: list[Layer] = [] if config_file is None else [(f"config file {str(config_file)!r}", load_yaml(config_file))]
    layers.append(("arguments", nest({**(flags or {}), "domain.name": domain})))
    layers.append(("overrides", parse_dotlist(dotlist)))
    dom = plugin_manager.domain_info(_name(layers, "domain") or DomainNode.name)
    dom_node = node_schema(DomainNode, dom.name, dom.options)
    train_node = make_dataclass("TrainNode", dataclass_fields(train_config))
    schema = make_dataclass(
        "TrainRunConfig",
        [
            ("out", str | None, field(default=None)),
            ("debug", bool, field(default=False)),
            ("domain", dom_node, field(default_factory=dom_node)),
            ("train", train_node, field(default_factory=train_node)),
        ],
    )
    cfg = merge_layers(schema, layers)
    check_task(dom, cfg.domain.task)
    check_options(cfg.domain, dom.options, f"domain {dom.name!r}")
    check_options(cfg.train, train_config, "train")
    return cfg


def options_of(node: DictConfig) -> dict[str, Any]:
    """A ``domain``/``sampler`` node as constructor kwargs for the Options/Config dataclass (without ``name``)."""
    values = OmegaConf.to_container(node, resolve=True)
    values.pop("name", None)
    return values


def save_config(cfg: DictConfig, path: Path) -> None:
    """Write the resolved config as YAML (what ``--config`` reads back)."""
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))


def sync_every(value: str | int) -> str | int:
    """decode.sync_every as decode() takes it: "auto", or the integer (a validated config holds either)."""
    return "auto" if str(value) == "auto" else int(value)
