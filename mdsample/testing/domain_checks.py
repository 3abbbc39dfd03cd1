"""Conformance checks of a Domain: what the CLI, the API and the studies rely on, each checked on a small batch.

Why these: every check is a promise some caller depends on without knowing the domain. ``api.run`` builds the
config from ``Options`` and ``defaults()``, loads the shipped model when no ``--model`` is given, feeds
``initial_state`` to ``core.decode`` (which drops finished rows, so the denoiser must treat rows independently),
decodes, saves after every batch (so ``save`` must rewrite, not append) and computes metrics even when a run
produced nothing usable (empty or invalid outputs must give NaN or a number, never a crash). The checks run on a
few rows and a few denoiser steps per block, so a real domain passes them in seconds.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from mdsample import plugin_manager
from mdsample.config import (
    DOMAIN_DEFAULT_KEYS,
    PACKAGE_DEFAULTS,
    DomainNode,
    _domain_layer,
    load_yaml,
    merge_layers,
    node_schema,
    run_schema,
)
from mdsample.core import BlockSchedule, DecodeResult, MaskedState, TokenChooser, decode
from mdsample.core.denoiser import Denoiser
from mdsample.core.rules import BUILTIN_RULES
from mdsample.describe import DomainInfo, domain_mismatches
from mdsample.domain import Domain, DomainOptions, Initial
from mdsample.testing.report import Check, CheckFailed, Probe, expect, focused, guarded, source_of

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")  # a CLI word and part of run-directory names
DECODE_RULE = "klass"  # the loop's most demanding path: KL history over a two-block window
PIPELINE_RULE = "confidence"


def _shape(t: Any) -> str:
    return f"{type(t).__name__} of shape {tuple(t.shape)}" if torch.is_tensor(t) else type(t).__name__


def _float_dict(value: Any) -> str | None:
    """None when ``value`` is a dict of str -> float-convertible values, else what is wrong with it."""
    if not isinstance(value, dict):
        return f"a {type(value).__name__}"
    for key, v in value.items():
        if not isinstance(key, str):
            return f"key {key!r} ({type(key).__name__}, not str)"
        try:
            float(v)
        except (TypeError, ValueError):
            return f"{key!r} = {v!r} ({type(v).__name__}, not convertible to float)"
    return None


class DomainProbe(Probe):
    """The shared, lazily computed pieces: denoiser, initial batch, decoded batch, objects."""

    def __init__(
        self, domain: Domain, options: DomainOptions | None, n: int, steps_per_block: int, seed: int, device: str
    ):
        super().__init__()
        self.domain, self.given, self.n, self.seed = domain, options, n, seed
        self.steps_per_block = steps_per_block
        self.device = torch.device(device)

    # -- steps -------------------------------------------------------------------------------------------------

    def shipped(self, caller: str) -> DomainOptions:
        """``domain.Options()``: the default request, which loads the shipped model."""
        return self.step("shipped", "options", lambda: guarded("Options() to construct with every field defaulted",
                                                               self.domain.Options), caller)

    def options(self, caller: str) -> DomainOptions:
        """The request under test: the given options, else the default ones."""
        return self.given if self.given is not None else self.shipped(caller)

    def tests_shipped(self, caller: str) -> bool:
        return self.given is None or self.given == self.shipped(caller)

    def denoiser(self, caller: str) -> Denoiser:
        owner = "shipped_model" if self.tests_shipped(caller) else "load_denoiser"
        return self.step("denoiser", owner, lambda: self._load(self.options(caller)), caller)

    def initial(self, caller: str) -> Initial:
        return self.step("initial", "initial_state", lambda: self._initial(caller), caller)

    def result(self, caller: str) -> tuple[Initial, DecodeResult]:
        """A fresh initial batch decoded in place (as ``api.run`` leaves it for ``save``), and the decode result."""
        return self.step("result", "decode_loop", lambda: self._decode(caller), caller)

    def possible(self, caller: str) -> torch.Tensor:
        """Random tokens a model could emit: at each position, uniformly among the tokens the denoiser gives a
        non-zero probability on the initial canvas (never the mask). Garbage, but garbage the domain must handle."""
        return self.step("possible", "logits", lambda: self._possible(caller), caller)

    def _possible(self, caller: str) -> torch.Tensor:
        den, initial = self.denoiser(caller), self.initial(caller)
        logits = guarded("denoiser(tokens, **conditioning) to return logits",
                         lambda: den(initial.state.tokens, **initial.conditioning))
        allowed = torch.softmax(logits.float(), dim=-1) > 0
        allowed[..., den.mask_id] = False
        gen = torch.Generator().manual_seed(self.seed)
        scores = torch.rand(allowed.shape, generator=gen).to(allowed.device)
        return scores.masked_fill(~allowed, -1.0).argmax(dim=-1)

    def objects(self, caller: str) -> list[Any]:
        return self.step("objects", "decode_objects", lambda: self._objects(caller), caller)

    # -- helpers -----------------------------------------------------------------------------------------------

    def _load(self, options: DomainOptions) -> Denoiser:
        what = "shipped model" if options.model is None else f"model {options.model!r}"
        den = guarded(f"load_denoiser to load the {what}", lambda: self.domain.load_denoiser(options, self.device))
        mask, vocab = getattr(den, "mask_id", None), getattr(den, "vocab_size", None)
        expect(callable(den), "a callable denoiser (tokens[B, L], **conditioning) -> logits[B, L, V]",
               lambda: f"a {type(den).__name__} that is not callable")
        expect(isinstance(vocab, int) and vocab >= 2, "denoiser.vocab_size: an int >= 2", repr(vocab))
        expect(isinstance(mask, int) and 0 <= mask < vocab, f"denoiser.mask_id: an int in [0, {vocab})", repr(mask))
        return den

    def fresh_initial(self, caller: str, offset: int = 0, n: int | None = None) -> Initial:
        """A new initial batch, drawn with the global torch RNG seeded as ``api.run`` seeds it."""
        den, options = self.denoiser(caller), self.options(caller)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return guarded(
                "initial_state to build the canvases",
                lambda: self.domain.initial_state(den, options, n or self.n, self.device, offset=offset),
            )

    def _initial(self, caller: str) -> Initial:
        den = self.denoiser(caller)
        initial = self.fresh_initial(caller)
        _check_initial(initial, self.n, den)
        return initial

    def schedule(self, initial: Initial) -> tuple[BlockSchedule, int]:
        """The domain's block length (from its defaults) with a few steps per block, and the total step count."""
        block = ((self.domain.defaults() or {}).get("decode") or {}).get("block_length")
        blocks = guarded("the domain's decode.block_length to tile its canvas",
                         lambda: BlockSchedule(None, block).resolve(initial.state.gen_length))
        steps = blocks.count * min(self.steps_per_block, blocks.length)
        return BlockSchedule(steps, block), steps

    def decode_with(self, initial: Initial, caller: str) -> DecodeResult:
        den = self.denoiser(caller)
        schedule, _ = self.schedule(initial)
        generator = torch.Generator(self.device).manual_seed(self.seed)
        return guarded(
            f"core.decode with {DECODE_RULE} at temperature 1 to finish",
            lambda: decode(den, initial.state, BUILTIN_RULES[DECODE_RULE](), schedule=schedule,
                           chooser=TokenChooser(temperature=1.0), conditioning=initial.conditioning,
                           generator=generator),
        )

    def _decode(self, caller: str) -> tuple[Initial, DecodeResult]:
        self.initial(caller)  # validated first, so a bad canvas is reported by initial_state, not here
        initial = self.fresh_initial(caller)
        before = initial.state.tokens.clone()
        frozen = initial.state.frozen.clone()
        result = self.decode_with(initial, caller)
        _, steps = self.schedule(initial)
        tokens, state = result.tokens, result.state
        left = (tokens[:, state.gen_start :] == state.mask_id) & ~state.exited.unsqueeze(1)
        expect(not left.any(), "every masked position filled (rows without early exit)",
               lambda: f"{int(left.sum())} masked positions left in rows {left.any(1).nonzero().flatten().tolist()}")
        changed = (tokens != before) & frozen
        expect(not changed.any(), "frozen positions unchanged by decoding",
               lambda: f"{int(changed.sum())} frozen positions changed, e.g. at {changed.nonzero()[0].tolist()}")
        nfe = result.nfe
        expect(bool(((nfe >= 1) & (nfe <= steps)).all()), f"between 1 and {steps} denoiser calls per row",
               lambda: f"NFE per row {nfe.tolist()}")
        return initial, result

    def _objects(self, caller: str) -> list[Any]:
        initial, result = self.result(caller)
        objects = guarded("decode(tokens, initial) to return the objects",
                          lambda: self.domain.decode(result.tokens, initial))
        expect(isinstance(objects, list) and len(objects) == self.n, f"a list of {self.n} objects (one per row)",
               lambda: f"a {type(objects).__name__} of length {len(objects) if hasattr(objects, '__len__') else '?'}")
        return objects


def _check_initial(initial: Any, n: int, den: Denoiser) -> None:
    expect(isinstance(initial, Initial), "an mdsample.domain.Initial", type(initial).__name__)
    state = initial.state
    expect(isinstance(state, MaskedState), "Initial.state: a MaskedState", type(state).__name__)
    tokens = state.tokens
    expect(tokens.dim() == 2 and tokens.shape[0] == n, f"canvas tokens of shape [{n}, L]", _shape(tokens))
    expect(tokens.dtype == torch.long, "canvas tokens of dtype torch.long", str(tokens.dtype))
    expect(state.mask_id == den.mask_id, f"state.mask_id equal to the denoiser's ({den.mask_id})", str(state.mask_id))
    bad = (tokens < 0) | (tokens >= den.vocab_size)
    expect(not bad.any(), f"token ids in [0, {den.vocab_size})", lambda: f"ids {tokens[bad].unique().tolist()}")
    empty = ~state.masked[:, state.gen_start :].any(dim=1)
    expect(not empty.any(), "at least one masked position to generate in every row",
           lambda: f"rows {empty.nonzero().flatten().tolist()} with nothing masked")
    expect(not initial.requests or len(initial.requests) == n, f"Initial.requests: empty or {n} entries (one per row)",
           f"{len(initial.requests)} entries")
    for key, value in initial.conditioning.items():
        expect(not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] == n,
               f"conditioning[{key!r}]: batch-first ({n} rows), so the loop can drop finished rows", _shape(value))
    if initial.answer is not None:
        answer = initial.answer
        expect(answer.dim() == 2 and answer.shape[0] == n and not answer.dtype.is_floating_point,
               f"Initial.answer: integer positions of shape [{n}, A]", _shape(answer))
        inside = bool(((answer >= state.gen_start) & (answer < state.length)).all())
        expect(inside, "answer positions inside the generation region", lambda: str(answer[0].tolist()))


# -- the checks ------------------------------------------------------------------------------------------------


def domain_checks(
    domain: Domain, options: DomainOptions | None = None, *, n: int = 4, steps_per_block: int = 4, seed: int = 0,
    device: str = "cpu",
) -> list[tuple[str, Check]]:
    """The (name, check) pairs of ``domain`` (see ``check_domain`` for the arguments)."""
    p = DomainProbe(domain, options, n, steps_per_block, seed, device)

    def options_check() -> None:
        Options = domain.Options
        ok = isinstance(Options, type) and dataclasses.is_dataclass(Options) and issubclass(Options, DomainOptions)
        expect(ok, "Domain.Options: a dataclass subclassing mdsample.domain.DomainOptions", repr(Options))
        p.shipped("options")
        schema = guarded("Options to give a valid config node (omegaconf-typed fields, none called 'name')",
                         lambda: node_schema(DomainNode, domain.name, Options))
        guarded("Options to give a valid config node", lambda: OmegaConf.structured(schema))

    def identity() -> None:
        name = getattr(domain, "name", None)
        expect(isinstance(name, str) and NAME_PATTERN.match(name), f"Domain.name matching {NAME_PATTERN.pattern}",
               repr(name))
        expect(isinstance(domain.description, str), "Domain.description: a str", repr(domain.description))
        tasks = guarded("tasks() to return the task names", domain.tasks)
        expect(isinstance(tasks, list) and tasks and all(isinstance(t, str) for t in tasks),
               "tasks(): a non-empty list of str (the first is the default)", repr(tasks))

    def defaults() -> None:
        found = guarded("defaults() to return a dict", domain.defaults) or {}
        expect(isinstance(found, dict), "defaults(): a dict", type(found).__name__)
        extra = sorted(set(found) - set(DOMAIN_DEFAULT_KEYS))
        expect(not extra, f"defaults() keys among {', '.join(DOMAIN_DEFAULT_KEYS)}", ", ".join(map(str, extra)))
        registered = plugin_manager.samplers()
        named = list(found.get("samplers") or {})
        unknown = [r for r in named if r not in registered]
        expect(not unknown, "defaults()['samplers'] to name registered samplers only",
               f"{', '.join(unknown)} (a typo, or a plugin that is not installed?)")
        base = load_yaml(PACKAGE_DEFAULTS)
        for rule_name in sorted({*named, DECODE_RULE, PIPELINE_RULE} & set(registered)):
            rule = registered[rule_name][0]
            info = DomainInfo.of(domain)
            guarded(f"the run config to resolve with the domain's defaults and sampler {rule_name!r}",
                    lambda rule=rule, info=info: merge_layers(run_schema(info, rule), [
                        ("package defaults", base),
                        (f"domain {domain.name!r} defaults", _domain_layer(info, rule.name)),
                    ]))

    def registered() -> None:
        found = plugin_manager.domains()
        expect(domain.name in found, f"domain {domain.name!r} registered through the mdsample entry points",
               f"registered domains: {', '.join(sorted(found)) or '(none)'}")
        other = guarded(f"the registered {domain.name!r} to load", lambda: plugin_manager.load_domain(domain.name))
        expect(type(other) is type(domain), f"the registered {domain.name!r} to be a {type(domain).__qualname__}",
               f"a {type(other).__qualname__} from plugin {found[domain.name][1]!r}")
        differ = domain_mismatches(found[domain.name][0], domain)
        expect(not differ, "the plugin's description (DomainInfo) to match the domain it loads", "; ".join(differ))

    def shipped_model() -> None:
        if p.tests_shipped("shipped_model"):  # the very load every other check needs: done once, reported here
            p.denoiser("shipped_model")
        else:
            p._load(p.shipped("shipped_model"))

    def load_denoiser() -> None:
        p.denoiser("load_denoiser")

    def initial_state() -> None:
        initial = p.initial("initial_state")
        later = p.fresh_initial("initial_state", offset=n, n=2)
        expect(later.state.batch == 2, "initial_state(n=2, offset=n) to give 2 rows", _shape(later.state.tokens))
        expect(later.state.length == initial.state.length, "the same canvas length for every batch",
               f"{later.state.length} vs {initial.state.length}")

    def logits() -> None:
        den, initial = p.denoiser("logits"), p.initial("logits")
        # A mid-decode canvas: half of the masked positions hold random tokens, different in every row.
        state, cond = initial.state, initial.conditioning
        gen = torch.Generator().manual_seed(p.seed)
        filled = torch.rand(state.tokens.shape, generator=gen).to(state.tokens.device) < 0.5
        tokens = torch.where(state.masked & filled, p.possible("logits"), state.tokens)
        full = guarded("denoiser(tokens, **conditioning) to return logits", lambda: den(tokens, **cond))
        b, length = tokens.shape
        expect(torch.is_tensor(full) and tuple(full.shape) == (b, length, den.vocab_size),
               f"logits of shape [{b}, {length}, {den.vocab_size}]", _shape(full))
        expect(full.dtype.is_floating_point, "floating-point logits", str(getattr(full, "dtype", None)))
        nan = torch.isnan(full[tokens == den.mask_id])
        expect(not nan.any(), "no NaN logits at masked positions", lambda: f"{int(nan.sum())} NaN values")
        if b < 2:
            return
        rows = torch.arange(1, b, device=tokens.device)
        sub = {k: v[rows] if torch.is_tensor(v) and v.shape[:1] == (b,) else v for k, v in cond.items()}
        part = guarded("the denoiser to accept a subset of rows (as the loop calls it)",
                       lambda: den(tokens[rows], **sub))
        diff = (part.float() - full[1:].float()).abs().nan_to_num(0.0).max().item()
        expect(torch.allclose(part.float(), full[1:].float(), atol=1e-4, rtol=1e-3, equal_nan=True),
               "rows denoised independently: logits of rows 1.. alone equal to theirs in the full batch",
               f"max difference {diff:.3g}")

    def decode_loop() -> None:
        p.result("decode_loop")

    def determinism() -> None:
        _, first = p.result("determinism")
        again = p.decode_with(p.fresh_initial("determinism"), "determinism")
        same = torch.equal(first.tokens, again.tokens)
        expect(same, "the same tokens from the same seed (initial_state + decode at temperature 1)",
               lambda: f"{int((first.tokens != again.tokens).sum())} positions differ between two runs")

    def decode_objects() -> None:
        p.objects("decode_objects")

    def metrics() -> None:
        objects, (initial, _) = p.objects("metrics"), p.result("metrics")
        value = guarded("metrics() on decoded samples to return a dict",
                        lambda: domain.metrics(objects, p.options("metrics"), initial))
        problem = _float_dict(value)
        expect(problem is None and value, "a non-empty dict of str -> float (NaN allowed)", lambda: problem or "{}")

    def metrics_empty() -> None:
        initial = _no_rows(p.initial("metrics_empty"))
        value = guarded("metrics([]) (an empty batch) to return NaN or numbers, not raise",
                        lambda: domain.metrics([], p.options("metrics_empty"), initial))
        problem = _float_dict(value)
        expect(problem is None, "metrics([]): a dict of str -> float (NaN allowed)", lambda: problem)

    def metrics_invalid() -> None:
        initial = p.initial("metrics_invalid")
        tokens = torch.where(initial.state.masked, p.possible("metrics_invalid"), initial.state.tokens)
        objects = guarded("decode() of random tokens the denoiser allows (invalid outputs) not to raise",
                          lambda: domain.decode(tokens, initial))
        value = guarded("metrics() on invalid outputs to return NaN or numbers, not raise",
                        lambda: domain.metrics(objects, p.options("metrics_invalid"), initial))
        problem = _float_dict(value)
        expect(problem is None, "metrics() on invalid outputs: a dict of str -> float (NaN allowed)", lambda: problem)

    def save() -> None:
        objects, (initial, _) = p.objects("save"), p.result("save")
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp)
            paths = guarded("save() to write the objects", lambda: domain.save(objects, run_dir, initial))
            expect(isinstance(paths, list) and paths, "save() to return the non-empty list of paths it wrote",
                   repr(paths))
            paths = [Path(x) for x in paths]
            for path in paths:
                expect(path.is_file() and path.stat().st_size > 0, f"{path.name}: a non-empty file",
                       "missing" if not path.exists() else f"{path.stat().st_size} bytes")
                expect(path.resolve().is_relative_to(run_dir.resolve()), "files inside the run directory", str(path))
            first = {x: x.read_bytes() for x in paths}
            guarded("save() to be callable again (the pipeline saves after every batch)",
                    lambda: domain.save(objects, run_dir, initial))
            grown = [x.name for x in paths if x.read_bytes() != first[x]]
            expect(not grown, "save() to rewrite its files (same objects, same bytes), never append",
                   lambda: f"{', '.join(grown)} changed on the second save")

    def pipeline() -> None:
        registered()
        initial = p.initial("pipeline")
        _, steps = p.schedule(initial)
        expect(PIPELINE_RULE in plugin_manager.samplers(), f"sampler {PIPELINE_RULE!r} registered (for the run)",
               "not registered")
        _run_pipeline(domain, p.options("pipeline"), steps, p.device)

    checks = [
        ("options", options_check),
        ("identity", identity),
        ("defaults", defaults),
        ("registered", registered),
        ("shipped_model", shipped_model),
        ("load_denoiser", load_denoiser),
        ("initial_state", initial_state),
        ("logits", logits),
        ("decode_loop", decode_loop),
        ("determinism", determinism),
        ("decode_objects", decode_objects),
        ("metrics", metrics),
        ("metrics_empty", metrics_empty),
        ("metrics_invalid", metrics_invalid),
        ("save", save),
        ("pipeline", pipeline),
    ]
    source = source_of(domain)
    return [(name, focused(check, source)) for name, check in checks]


def _no_rows(initial: Initial) -> Initial:
    """``initial`` cut to zero rows (what goes with an empty list of objects); other fields are kept as they are."""
    state = initial.state
    empty = MaskedState(state.tokens[:0], state.mask_id, state.gen_start, state.frozen[:0])
    batch = state.batch
    conditioning = {k: v[:0] if torch.is_tensor(v) and v.shape[:1] == (batch,) else v
                    for k, v in initial.conditioning.items()}
    answer = None if initial.answer is None else initial.answer[:0]
    return dataclasses.replace(initial, state=empty, conditioning=conditioning, requests=[], answer=answer)


def _option_flags(options: DomainOptions) -> dict[str, Any]:
    """The options as ``domain.*`` config values (None values mean "not set" to the config layers)."""
    return {f"domain.{k}": v for k, v in dataclasses.asdict(options).items() if v is not None}


def _run_pipeline(domain: Domain, options: DomainOptions, steps: int, device: torch.device) -> None:
    """What ``mdsample --domain NAME --sampler confidence -n 2`` does, into a temporary run directory."""
    from rich.console import Console

    from mdsample.api import run
    from mdsample.config import resolve_config

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        flags = {"n": 2, "device": str(device), "out": str(out), "progress": False, "decode.steps": steps,
                 **_option_flags(options)}
        cfg = guarded("the run config to resolve", lambda: resolve_config(domain.name, PIPELINE_RULE, flags=flags))
        result = guarded(f"a run (mdsample --domain {domain.name} --sampler {PIPELINE_RULE} -n 2) to finish",
                         lambda: run(cfg, console=Console(file=io.StringIO())))
        expect(len(result.objects) == 2, "2 objects from the run", str(len(result.objects)))
        written = {x.name for x in out.iterdir()}
        expect({"config.yaml", "metrics.json"} <= written, "config.yaml and metrics.json in the run directory",
               ", ".join(sorted(written)))

        def no_constants(name: str) -> Any:
            raise CheckFailed("strict JSON in metrics.json (NaN written as null)", name)

        metrics = json.loads((out / "metrics.json").read_text(), parse_constant=no_constants)
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        expect(not bad, "finite numbers or null in metrics.json", ", ".join(bad))
