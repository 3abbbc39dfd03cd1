"""The generation pipeline, shared by ``mdsample`` (the CLI) and ``mdsample.sample`` (the Python API).

resolve config -> load domain -> denoiser -> per batch: initial_state -> core.decode -> domain.decode ->
domain.save -> (after the last batch) metrics -> metrics.json + a table. config.yaml is written before sampling
starts and the samples after every batch, so an interrupted run keeps its finished work.

Every batch draws from its own random stream, seeded from (seed, batch index) by ``batch_seed``, so a batch's
samples do not depend on which batches ran before it in the same process. That is what lets ``execute`` shard a
run's whole batches across processes (``Shard``: rank r takes batches r, r + world, ...) and reproduce the
one-process output exactly once rank 0 has gathered them; metrics are computed once, on rank 0.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mdsample import plugin_manager
from mdsample.config import options_of, resolve_config, save_config, sync_every
from mdsample.core import BlockSchedule, Corrector, MaskedState, TokenChooser, correct, decode
from mdsample.core.callbacks import Callback, RichProgress, TraceRecorder
from mdsample.core.capture import KeptGraphs
from mdsample.core.compile import use_compile
from mdsample.core.infill import EarlyExit
from mdsample.domain import Domain, Initial
from mdsample.errors import ConfigError
from mdsample.plugin_manager import available_domains, available_samplers

__all__ = ["RunResult", "Shard", "available_domains", "available_samplers", "execute", "run", "sample"]


@dataclass
class RunResult:
    """What a run produced: the domain objects, the metrics (as in metrics.json), where it wrote, and NFE per sample."""

    objects: list[Any]
    metrics: dict[str, Any]
    run_dir: Path
    nfe: torch.Tensor
    tokens: torch.Tensor
    config: DictConfig


@dataclass(frozen=True)
class Decoder:
    """What every batch of a run decodes with: the config's rule, block schedule, token chooser, loop settings and
    corrector steps, and the CUDA graphs its decodes keep (core/capture.py KeptGraphs: with a capturable denoiser,
    such as the native LLaDA / Dream modules, only a run's first batch of each shape pays the capture; the graphs and
    KV cache stay until a batch of another shape, or until the Decoder goes).

    Shared by ``execute`` and the integrations (the lm-evaluation-harness model) so both decode alike.
    """

    cfg: DictConfig
    rule: Any
    schedule: BlockSchedule
    chooser: TokenChooser
    corrector: Corrector
    graphs: KeptGraphs = field(default_factory=KeptGraphs, compare=False, repr=False)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Decoder:
        rule_cls = plugin_manager.get_rule(cfg.sampler.name)
        return cls(cfg, rule_cls(rule_cls.Config(**options_of(cfg.sampler))),
                   BlockSchedule(cfg.decode.steps, cfg.decode.block_length),
                   TokenChooser(cfg.decode.temperature, cfg.decode.top_k, cfg.decode.top_p),
                   Corrector(cfg.decode.correct_steps, cfg.decode.correct_positions,
                             cfg.decode.correct_pick))

    def __call__(self, denoiser: Any, state: MaskedState, conditioning: dict[str, torch.Tensor],
                 generator: torch.Generator | None, callbacks: Sequence[Callback] = (),
                 early_exit: EarlyExit | None = None, answer_first: torch.Tensor | None = None) -> Any:
        cfg = self.cfg
        use_compile(denoiser, cfg.decode.compile, state.tokens.device)
        result = decode(denoiser, state, self.rule, schedule=self.schedule, chooser=self.chooser,
                        conditioning=conditioning, generator=generator,
                        stats_dtype=getattr(torch, cfg.decode.stats_dtype), confidence=cfg.decode.confidence,
                        callbacks=callbacks, early_exit=early_exit, cache=cfg.decode.cache,
                        cache_refresh=cfg.decode.cache_refresh, capture=cfg.decode.capture,
                        answer_first=answer_first, sync_every=sync_every(cfg.decode.sync_every), graphs=self.graphs)
        return correct(denoiser, result, self.corrector, self.chooser, conditioning, generator)


@dataclass(frozen=True)
class Shard:
    """This process's share of a run: batches ``rank, rank + world, ...`` of it. The default is the whole run.

    ``gather`` collects every rank's payload on rank 0 (a list ordered by rank) and returns None elsewhere;
    mdsample.study.distributed supplies one over torch.distributed.
    """

    rank: int = 0
    world: int = 1

    def gather(self, payload: Any) -> list[Any] | None:
        return [payload]


@dataclass
class _Batch:
    """One decoded batch of a run, on the CPU so that it can travel between processes: its objects and its final
    canvas (the rest of its Initial is rebuilt where needed, since it may hold a model)."""

    index: int
    objects: list[Any]
    state: MaskedState
    tokens: torch.Tensor
    nfe: torch.Tensor


# Odd 64-bit constant (2^64 / golden ratio): consecutive batches get well-spread seeds, and batch 0 gets the seed.
_SEED_STRIDE = 0x9E3779B97F4A7C15


def batch_seed(seed: int, index: int) -> int:
    """The seed of batch ``index``'s random stream: ``seed`` for the first batch (one-batch runs keep their
    historical output), then strides of ``_SEED_STRIDE`` modulo 2^64."""
    return (seed + index * _SEED_STRIDE) % 2**64


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


def _join(parts: list[Any], rows: list[int]) -> Any:
    """The values one field takes in consecutive batches of ``rows`` rows, joined: canvases, tensors and lists with
    one entry per row are concatenated, dicts joined key by key; anything else is shared and taken from the first."""
    first = parts[0]
    if isinstance(first, MaskedState):
        state = MaskedState(torch.cat([s.tokens for s in parts]), first.mask_id, first.gen_start,
                            torch.cat([s.frozen for s in parts]))
        for attr in ("nfe", "wall_s", "commit_step", "finished", "exited"):
            setattr(state, attr, torch.cat([getattr(s, attr) for s in parts]))
        return state
    if isinstance(first, dict):
        return {key: _join([p[key] for p in parts], rows) for key in first}
    per_row = all(len(p) == r for p, r in zip(parts, rows, strict=True)) if all(
        (torch.is_tensor(p) and p.dim() > 0) or isinstance(p, list) for p in parts) else False
    if per_row:
        return torch.cat(parts) if torch.is_tensor(first) else [x for p in parts for x in p]
    return first


def _concat(initials: list[Initial]) -> Initial:
    """One Initial for all batches so far, so domain.save/metrics see every object with its request.

    It keeps the class the domain returned (e.g. with its vocabulary), joining every field with ``_join``.
    """
    if len(initials) == 1:
        return initials[0]
    rows = [i.state.batch for i in initials]
    joined = copy.copy(initials[0])
    for f in dataclasses.fields(joined):
        setattr(joined, f.name, _join([getattr(i, f.name) for i in initials], rows))
    return joined


def _cpu(value: Any) -> Any:
    """``value`` with every tensor (also inside a MaskedState or a dict) moved to the CPU; other values as they are."""
    if torch.is_tensor(value):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _cpu(v) for k, v in value.items()}
    if isinstance(value, MaskedState):
        moved = copy.copy(value)
        for f in dataclasses.fields(value):
            setattr(moved, f.name, _cpu(getattr(value, f.name)))
        return moved
    return value


def _decoded_initial(initial: Initial, state: MaskedState) -> Initial:
    """``initial`` on the CPU, with its canvas replaced by the decoded ``state``."""
    moved = copy.copy(initial)
    for f in dataclasses.fields(initial):
        setattr(moved, f.name, state if f.name == "state" else _cpu(getattr(initial, f.name)))
    return moved


def _initial_state(domain: Domain, denoiser: Any, options: Any, cfg: DictConfig, index: int,
                   device: torch.device) -> Initial:
    """Batch ``index``'s canvases, drawn under its own seed so that any process draws the same ones."""
    torch.manual_seed(batch_seed(cfg.seed, index))  # for domains that draw requests at random
    size = min(cfg.batch_size, cfg.n - index * cfg.batch_size)
    return domain.initial_state(denoiser, options, size, device, offset=index * cfg.batch_size)


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


def _answer_first(cfg: DictConfig, domain: Domain, initial: Initial) -> torch.Tensor | None:
    """The answer slots to decode before anything else (``decode.answer_first``), or None."""
    if not cfg.decode.answer_first:
        return None
    if initial.answer is None:
        raise ConfigError(f"decode.answer_first needs answer slots, which domain {domain.name!r} does not lay out for "
                          "this request; use a reasoning task (e.g. --domain text --task chain)")
    return initial.answer


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
        "wall_s_total": wall,  # seconds in decode(); with several processes, the longest process's
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
    result = execute(cfg, console=console)
    assert result is not None  # a single process is rank 0 and holds every batch
    return result


def execute(
    cfg: DictConfig,
    *,
    shard: Shard | None = None,
    console: Console | None = None,
    callbacks: Sequence[Callback] = (),
) -> RunResult | None:
    """``run`` for one process of a sharded run: this process decodes batches ``rank, rank + world, ...``.

    Rank 0 gathers every batch, writes the run directory and computes the metrics once; it returns the RunResult
    (identical to a one-process run of ``cfg``), the other ranks return None. ``callbacks`` are added to every
    batch's decode() (e.g. a study's progress bar).
    """
    shard = shard or Shard()
    lead = shard.rank == 0
    domain = plugin_manager.load_domain(cfg.domain.name)
    options = domain.Options(**options_of(cfg.domain))
    decoder = Decoder.from_config(cfg)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # for domains that draw weights at random
    denoiser = domain.load_denoiser(options, device)  # before the run directory: a bad model leaves no debris

    run_dir = _run_dir(cfg)
    cfg = cfg.copy()
    cfg.out, cfg.device = str(run_dir), str(device)
    if lead:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")

    batches = math.ceil(cfg.n / cfg.batch_size)
    done: list[_Batch] = []
    own: dict[int, Initial] = {}
    wall = 0.0
    try:
        for b in range(shard.rank, batches, shard.world):
            initial = _initial_state(domain, denoiser, options, cfg, b, device)
            trace = TraceRecorder() if cfg.trace and b == 0 else None
            observers = [RichProgress(f"batch {b + 1}/{batches}")] if cfg.progress else []
            observers += [*([trace] if trace else []), *callbacks]
            early_exit = _early_exit(cfg, domain, initial)
            generator = torch.Generator(device=device).manual_seed(batch_seed(cfg.seed, b))
            start = time.perf_counter()
            result = decoder(denoiser, initial.state, initial.conditioning, generator, observers, early_exit,
                             _answer_first(cfg, domain, initial))
            wall += time.perf_counter() - start
            done.append(_Batch(b, domain.decode(result.tokens, initial), _cpu(result.state), result.tokens.cpu(),
                               result.nfe.cpu()))
            own[b] = initial
            if shard.world == 1:
                decoded = [_decoded_initial(own[d.index], d.state) for d in done]
                domain.save([o for d in done for o in d.objects], run_dir, _concat(decoded))
            if trace is not None:
                frames = torch.stack(trace.frames) if trace.frames else torch.empty(0)
                torch.save({"frames": frames, "commit_step": result.commit_step[: trace.rows].cpu()},
                           run_dir / "trace.pt")
    except KeyboardInterrupt:
        kept = f": {sum(len(d.objects) for d in done)} finished samples kept in {run_dir}" if shard.world == 1 else ""
        print(f"interrupted{kept}", file=sys.stderr)
        raise

    parts = shard.gather((done, wall))
    if parts is None:
        return None
    done = sorted((d for part, _ in parts for d in part), key=lambda d: d.index)
    wall = max(w for _, w in parts)  # the processes decode concurrently: wall-clock is the longest, not the sum
    objects = [o for d in done for o in d.objects]
    initials = [own[d.index] if d.index in own else _initial_state(domain, denoiser, options, cfg, d.index, device)
                for d in done]
    everything = _concat([_decoded_initial(i, d.state) for i, d in zip(initials, done, strict=True)])
    if shard.world > 1:
        domain.save(objects, run_dir, everything)
    nfe_all = torch.cat([d.nfe for d in done])
    metrics = run_metrics(cfg, domain, objects, options, everything, nfe_all, wall)
    (run_dir / "metrics.json").write_text(json.dumps({k: _json_value(v) for k, v in metrics.items()}, indent=2) + "\n")
    print_metrics(metrics, run_dir, console)
    return RunResult(objects, metrics, run_dir, nfe_all, torch.cat([d.tokens for d in done]), cfg)
