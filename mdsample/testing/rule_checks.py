"""Conformance checks of a selection rule (a ``mdsample.core.Rule`` subclass).

Why call ``select`` directly: the decode loop intersects every selection with the active positions and adds one
position to rows that chose none, so a rule that commits a frozen position, or nothing, still *seems* to work
end to end; it only shows once the rule is used elsewhere or the loop's safety net changes. The checks therefore
hold the rule to its documented contract on crafted situations (``rule_inputs``), and separately run it through
``core.decode`` to show it integrates: it finishes, keeps frozen positions and is deterministic under a seed. What a
rule declares for ``decode.sync_every`` is held to as well: ``device_only`` (select reads nothing back from the
device) and ``fixed_count`` (select commits exactly ``ctx.k`` positions per row), on which core/multistep.py relies.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from omegaconf import OmegaConf

from mdsample import plugin_manager
from mdsample.config import SamplerNode, node_schema
from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.rules import Rule
from mdsample.describe import sampler_mismatches
from mdsample.testing import rule_inputs
from mdsample.testing.domain_checks import NAME_PATTERN
from mdsample.testing.report import Check, Probe, expect, focused, guarded, source_of

SCHEDULES = ("linear", "cosine")


def _positions(mask: torch.Tensor) -> str:
    """``row r: [i, j]`` for the first row of a bool [b, W] mask that has any True."""
    r = int(mask.any(dim=1).nonzero()[0])
    return f"row {r}: positions {mask[r].nonzero().flatten().tolist()}"


def rule_checks(rule: type[Rule], *, seed: int = 0, device: str = "cpu") -> list[tuple[str, Check]]:
    """The (name, check) pairs of ``rule`` (see ``check_rule`` for the arguments)."""
    dev = torch.device(device)
    p = Probe()

    def instance(caller: str) -> Rule:
        return p.step("instance", "config", lambda: guarded("Rule() with the default config", rule), caller)

    def identity() -> None:
        ok = isinstance(rule, type) and issubclass(rule, Rule)
        expect(ok, "a subclass of mdsample.core.Rule", repr(rule))
        name = getattr(rule, "name", None)
        expect(isinstance(name, str) and NAME_PATTERN.match(name), f"Rule.name matching {NAME_PATTERN.pattern}",
               repr(name))
        expect(rule.schedule in SCHEDULES, f"Rule.schedule in {SCHEDULES}", repr(rule.schedule))
        expect(rule.select is not Rule.select, "select() implemented", "the base class's select()")

    def config() -> None:
        cfg = rule.Config
        expect(dataclasses.is_dataclass(cfg) and isinstance(cfg, type), "Rule.Config: a dataclass", repr(cfg))
        schema = guarded("Config to give a valid config node (omegaconf-typed fields, none called 'name')",
                         lambda: node_schema(SamplerNode, rule.name, cfg))
        guarded("Config to give a valid config node", lambda: OmegaConf.structured(schema))
        made = instance("config")
        history = made.history
        expect(isinstance(history, int) and history >= 0, "Rule.history: an int >= 0", repr(history))

    def registered() -> None:
        found = plugin_manager.samplers()
        expect(rule.name in found, f"sampler {rule.name!r} registered through the mdsample entry points",
               f"registered samplers: {', '.join(sorted(found)) or '(none)'}")
        loaded = guarded(f"the registered {rule.name!r} to load", lambda: plugin_manager.get_rule(rule.name))
        expect(loaded is rule, f"the registered {rule.name!r} to be {rule.__qualname__}",
               f"{loaded!r} from plugin {found[rule.name][1]!r}")
        differ = sampler_mismatches(found[rule.name][0], rule)
        expect(not differ, "the plugin's description (SamplerInfo) to match the rule it loads", "; ".join(differ))

    def select_contract() -> None:
        made = instance("select_contract")
        for s in rule_inputs.situations(made.history, rule.schedule, seed, dev):
            chosen = guarded(f"select() to handle the {s.label!r} situation", lambda s=s: made.select(s.stats, s.ctx))
            active = s.ctx.active
            expect(torch.is_tensor(chosen) and chosen.dtype == torch.bool and chosen.shape == active.shape,
                   f"select() to return a bool tensor of shape {tuple(active.shape)} ({s.label})",
                   lambda chosen=chosen: f"{getattr(chosen, 'dtype', type(chosen).__name__)} "
                   f"of shape {tuple(getattr(chosen, 'shape', ()))}")
            outside = chosen & ~active
            expect(not outside.any(), f"commits only active masked positions ({s.label})",
                   lambda outside=outside: f"committed inactive (frozen, committed, next block) {_positions(outside)}")
            none = ~chosen.any(dim=1)
            expect(not none.any(), f"at least one committed position per row ({s.label})",
                   lambda none=none: f"nothing committed in rows {none.nonzero().flatten().tolist()}")

    def deterministic() -> None:
        made = instance("deterministic")
        for s in rule_inputs.situations(made.history, rule.schedule, seed, dev):
            a = guarded("select()", lambda s=s: made.select(*_args(rule_inputs.regenerate(s, seed))))
            b = guarded("select()", lambda s=s: made.select(*_args(rule_inputs.regenerate(s, seed))))
            expect(torch.equal(a, b), f"the same selection for the same inputs and generator seed ({s.label})",
                   lambda a=a, b=b: f"selections differ at {_positions(a != b)}")

    def rows_independent() -> None:
        made = instance("rows_independent")
        for s in rule_inputs.situations(made.history, rule.schedule, seed, dev):
            gen = s.ctx.generator
            before = gen.get_state()
            batched = guarded("select()", lambda s=s: made.select(s.stats, s.ctx))
            if not torch.equal(before, gen.get_state()):
                continue  # a random rule: each row's draw depends on the batch, as it may
            for i in range(batched.shape[0]):
                alone = guarded("select() on one row", lambda s=s, i=i: made.select(*_args(rule_inputs.row(s, i))))
                expect(torch.equal(alone[0], batched[i]),
                       f"row {i} selected the same alone as in the batch ({s.label}); the loop drops finished rows",
                       lambda alone=alone, i=i: f"alone {alone[0].nonzero().flatten().tolist()}, "
                       f"in the batch {batched[i].nonzero().flatten().tolist()}")

    def sync_free() -> None:
        made = instance("sync_free")
        for s in rule_inputs.situations(made.history, rule.schedule, seed, dev):
            ctx = dataclasses.replace(s.ctx, k_max=s.ctx.block_length)
            if rule.device_only:
                with _host_reads() as reads:
                    guarded("select() with ctx.k_max", lambda s=s, ctx=ctx: made.select(s.stats, ctx))
                expect(not reads, f"select() to read nothing back from the device, as Rule.device_only declares "
                       f"({s.label})", lambda reads=reads: f"reads through {', '.join(sorted(set(reads)))}")
            if rule.fixed_count:
                chosen = guarded("select()", lambda s=s: made.select(s.stats, s.ctx))
                counts = chosen.sum(dim=1)
                expect(torch.equal(counts, s.ctx.k), f"exactly ctx.k positions per row, as Rule.fixed_count declares "
                       f"({s.label})", lambda counts=counts, s=s: f"{counts.tolist()} for k {s.ctx.k.tolist()}")

    def decodes() -> None:
        made = instance("decode")
        length, block = 16, 8
        den = rule_inputs.NeighbourDenoiser(length, seed=seed)

        def run() -> MaskedState:
            tokens = torch.full((3, length), den.mask_id, dtype=torch.long, device=dev)
            frozen = torch.zeros_like(tokens, dtype=torch.bool)
            frozen[:, [2, 9]] = True
            state = MaskedState(tokens.masked_fill(frozen, 1), den.mask_id, frozen=frozen)
            generator = torch.Generator(dev).manual_seed(seed)
            guarded("core.decode to finish with this rule (two blocks, frozen positions, temperature 1)",
                    lambda: decode(den, state, made, schedule=BlockSchedule(8, block),
                                   chooser=TokenChooser(temperature=1.0), generator=generator))
            return state

        first, second = run(), run()
        expect(not first.masked.any(), "every masked position filled", lambda: f"{int(first.masked.sum())} left")
        expect(bool((first.tokens[:, [2, 9]] == 1).all()), "frozen positions unchanged", "a frozen token changed")
        expect(bool((first.nfe <= length).all()), f"at most {length} denoiser calls (one position per step at least)",
               str(first.nfe.tolist()))
        expect(torch.equal(first.tokens, second.tokens), "the same tokens from the same seed",
               lambda: f"{int((first.tokens != second.tokens).sum())} positions differ")

    checks = [
        ("identity", identity),
        ("config", config),
        ("registered", registered),
        ("select_contract", select_contract),
        ("deterministic", deterministic),
        ("rows_independent", rows_independent),
        ("sync_free", sync_free),
        ("decode", decodes),
    ]
    source = source_of(rule)
    return [(name, focused(check, source)) for name, check in checks]


def _args(s: rule_inputs.Situation) -> tuple:
    return s.stats, s.ctx


_READS = ("cpu", "item", "tolist", "__int__", "__bool__", "__float__", "__index__")
"""The Tensor methods that read a value back to the host: on a GPU each waits for the device (a sync)."""


@contextlib.contextmanager
def _host_reads() -> Iterator[list[str]]:
    """The names of the host reads made inside the block (decode's ``sync_every`` needs rules that make none)."""
    reads: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in _READS}

    def counting(name, original):
        def read(tensor, *args, **kwargs):
            reads.append(name)
            return original(tensor, *args, **kwargs)

        return read

    try:
        for name, original in originals.items():
            setattr(torch.Tensor, name, counting(name, original))
        yield reads
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
