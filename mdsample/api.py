"""The generation pipeline, shared by ``mdsample`` (the CLI) and ``mdsample.sample`` (the Python API).

resolve config -> load domain -> denoiser -> per batch: initial_state -> core.decode -> domain.decode ->
domain.save -> (after the last batch) metrics -> metrics.json + a table. config.yaml is written before sampling
starts and the samples after every batch, so an interrupted run keeps its finished work.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mdsample import plugin_manager
from mdsample.config import options_of, resolve_config, save_config
from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.callbacks import RichProgress, TraceRecorder
from mdsample.core.infill import EarlyExit
from mdsample.domain import Domain, Initial
from mdsample.errors import ConfigError


@dataclass
class RunResult:
    """What a run produced: the domain objects, the metrics (as in metrics.json), where it wrote, and NFE per sample."""

    objects: list[Any]
    metrics: dict[str, Any]
    run_dir: Path
    nfe: torch.Tensor
    tokens: torch.Tensor
    config: DictConfig


def available_domains() -> list[str]:
    """Names of the registered domains."""
    return sorted(plugin_manager.domains())


def available_samplers() -> list[str]:
    """Names of the registered samplers (selection rules)."""
    return sorted(plugin_manager.samplers())


def sample(
    domain: str | None = None,
    sampler: str | None = None,
    n: int | None = None,
    *,
    config: str | Path | None = None,
    **overrides: Any,
) -> RunResult:
    """Generate ``n`` objects of ``domain`` with ``sampler`` (None: from the config; molecule, klass and 64 by default).

    ``config`` is a YAML file like the CLI's ``--config``. ``overrides`` set any config key, as nested dicts or with
    dotted names: ``sample("molecule", "klass", decode={"steps": 32}, **{"sampler.kl_threshold": 0.005}, seed=1)``
    (the ``domain``/``sampler`` options need dotted names, since those two arguments are the names).
    """
    cfg = resolve_config(domain, sampler, config_file=config, flags={"n": n, **overrides})
    return run(cfg)


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu; an unusable device is a ConfigError, not a crash mid-run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return device


def _run_dir(cfg: DictConfig) -> Path:
    if cfg.out is not None:
        return Path(cfg.out)
    base = Path("runs") / f"{cfg.domain.name}-{cfg.sampler.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    return path


def _concat(initials: list[Initial]) -> Initial:
    """One Initial for all batches so far, so domain.save/metrics see every object with its request."""
    if len(initials) == 1:
        return initials[0]
    states = [i.state for i in initials]
    first = states[0]
    state = MaskedState(torch.cat([s.tokens for s in states]), first.mask_id, first.gen_start,
                        torch.cat([s.frozen for s in states]))
    for attr in ("nfe", "wall_s", "commit_step", "finished", "exited"):
        setattr(state, attr, torch.cat([getattr(s, attr) for s in states]))
    conditioning = {}
    for key, value in initials[0].conditioning.items():
        batched = torch.is_tensor(value) and value.shape[:1] == (first.batch,)
        conditioning[key] = torch.cat([i.conditioning[key] for i in initials]) if batched else value
    answer = None if initials[0].answer is None else torch.cat([i.answer for i in initials])
    return Initial(state, conditioning, [r for i in initials for r in i.requests], answer)


def _json_value(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _early_exit(cfg: DictConfig, domain: Domain, initial: Initial) -> EarlyExit | None:
    if cfg.decode.early_exit is None:
        return None
    if initial.answer is None:
        raise ConfigError(f"--early-exit needs answer slots, which domain {domain.name!r} does not lay out for this "
                          "request; use a reasoning task (e.g. --domain text --task arithmetic)")
    return EarlyExit(cfg.decode.early_exit, initial.answer)


def run_metrics(
    cfg: DictConfig, domain: Domain, objects: list, options: Any, initial: Initial, nfe: torch.Tensor, wall: float
) -> dict[str, Any]:
    """Run statistics, the domain's metrics, then every plugin metric (``register_metrics``) that applies."""
    nfe_f = nfe.double()
    out: dict[str, Any] = {
        "domain": cfg.domain.name,
        "sampler": cfg.sampler.name,
        "n": len(objects),
        "nfe_mean": nfe_f.mean().item(),
        "nfe_p50": nfe_f.quantile(0.5).item(),
        "nfe_p90": nfe_f.quantile(0.9).item(),
        "wall_s_total": wall,
        "wall_s_per_sample": wall / max(len(objects), 1),
    }
    out.update({k: float(v) for k, v in domain.metrics(objects, options, initial).items()})
    for name, (fn, plugin) in plugin_manager.metrics().items():
        try:
            value = fn(objects, domain)
        except Exception as exc:  # a plugin metric must not lose a finished run
            print(f"warning: metric {name!r} of plugin {plugin!r} failed: {exc}", file=sys.stderr)
            value = float("nan")
        if value is not None:
            out[name] = float(value)
    return out


def print_metrics(metrics: dict[str, Any], run_dir: Path, console: Console | None = None) -> None:
    table = Table(title=f"metrics ({run_dir})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    (console or Console()).print(table)


def run(cfg: DictConfig, console: Console | None = None) -> RunResult:
    """Run one resolved config end to end (see the module docstring); returns what it produced."""
    domain = plugin_manager.load_domain(cfg.domain.name)
    rule_cls = plugin_manager.get_rule(cfg.sampler.name)
    options = domain.Options(**options_of(cfg.domain))
    rule = rule_cls(rule_cls.Config(**options_of(cfg.sampler)))
    schedule = BlockSchedule(cfg.decode.steps, cfg.decode.block_length)
    chooser = TokenChooser(cfg.decode.temperature, cfg.decode.top_k, cfg.decode.top_p)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # for domains that draw weights or requests at random
    denoiser = domain.load_denoiser(options, device)  # before the run directory: a bad model leaves no debris

    run_dir = _run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = cfg.copy()
    cfg.out, cfg.device = str(run_dir), str(device)
    save_config(cfg, run_dir / "config.yaml")

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    batches = math.ceil(cfg.n / cfg.batch_size)
    initials, objects, tokens, nfe, trace, wall = [], [], [], [], None, 0.0
    try:
        for b in range(batches):
            size = min(cfg.batch_size, cfg.n - b * cfg.batch_size)
            initial = domain.initial_state(denoiser, options, size, device, offset=b * cfg.batch_size)
            callbacks = [RichProgress(f"batch {b + 1}/{batches}")] if cfg.progress else []
            if cfg.trace and trace is None:
                trace = TraceRecorder()
                callbacks.append(trace)
            early_exit = _early_exit(cfg, domain, initial)
            start = time.perf_counter()
            result = decode(denoiser, initial.state, rule, schedule=schedule, chooser=chooser,
                            conditioning=initial.conditioning, generator=generator,
                            stats_dtype=getattr(torch, cfg.decode.stats_dtype), confidence=cfg.decode.confidence,
                            callbacks=callbacks, early_exit=early_exit)
            wall += time.perf_counter() - start
            objects += domain.decode(result.tokens, initial)
            initials.append(initial)
            tokens.append(result.tokens.cpu())
            nfe.append(result.nfe.cpu())
            domain.save(objects, run_dir, _concat(initials))
            if trace is not None and b == 0:
                frames = torch.stack(trace.frames) if trace.frames else torch.empty(0)
                torch.save({"frames": frames, "commit_step": result.commit_step[: trace.rows].cpu()},
                           run_dir / "trace.pt")
    except KeyboardInterrupt:
        print(f"interrupted: {len(objects)} finished samples kept in {run_dir}", file=sys.stderr)
        raise

    everything = _concat(initials)
    nfe_all = torch.cat(nfe)
    metrics = run_metrics(cfg, domain, objects, options, everything, nfe_all, wall)
    (run_dir / "metrics.json").write_text(json.dumps({k: _json_value(v) for k, v in metrics.items()}, indent=2) + "\n")
    print_metrics(metrics, run_dir, console)
    return RunResult(objects, metrics, run_dir, nfe_all, torch.cat(tokens), cfg)
