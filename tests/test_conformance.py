"""The conformance kit (mdsample.testing): every registered domain and rule passes it, and it catches breakage.

The registered domains and rules are read when the tests are collected, so a newly registered first-party domain
(or an installed third-party one, such as the dna example) is checked without editing this file. The broken
subjects below each break exactly one promise; the kit must name exactly the check that guards it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from toy_domain import SuccessorDenoiser, ToyDomain

from mdsample import plugin_manager
from mdsample.core.rules import BUILTIN_RULES, Rule, StepContext, ensure_progress, top_k_mask
from mdsample.core.stats import StepStats
from mdsample.domain import DomainOptions, Initial
from mdsample.hookspecs import hookimpl
from mdsample.testing import ConformanceError, check_domain, check_rule, conformance_checks

DOMAINS = sorted(plugin_manager.domains())
RULES = sorted(plugin_manager.samplers())
plugin_manager.reset()  # collection loaded the entry points; each test starts from a clean plugin manager


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mdsample-data")


@pytest.fixture
def entry_points(data_dir, monkeypatch):
    """The plugins exactly as installed (entry points), fresh for the test; domain data caches go to a tmp dir."""
    monkeypatch.setenv("MDSAMPLE_DATA", str(data_dir))
    plugin_manager.reset()
    yield
    plugin_manager.reset()


# The package a first-party domain's outputs need from its extra: without it that domain cannot conform here
# (its run ends in a one-line error naming the extra), so its check is skipped, saying why.
NEEDS = {"molecule": "rdkit"}


@pytest.mark.parametrize("name", DOMAINS)
def test_registered_domain_conforms(entry_points, name):
    if name in NEEDS:
        pytest.importorskip(NEEDS[name], reason=f"domain {name!r} needs {NEEDS[name]}: pip install 'mdsample[{name}]'")
    check_domain(name)


@pytest.mark.parametrize("name", RULES)
def test_registered_rule_conforms(entry_points, name):
    check_rule(name)


def test_first_party_domains_and_rules_are_all_collected():
    assert "molecule" in DOMAINS and set(BUILTIN_RULES) <= set(RULES)


# -- broken domains: each breaks one promise ----------------------------------------------------------------------


class EmptyMetricsCrash(ToyDomain):
    name = "toy-empty-metrics"

    def metrics(self, objects, options, initial):
        return {"valid": sum(len(o) for o in objects) / len(objects)}  # ZeroDivisionError on an empty batch


class AppendingSave(ToyDomain):
    name = "toy-appending-save"

    def save(self, objects, run_dir: Path, initial):
        path = run_dir / "samples.txt"
        with path.open("a") as f:  # the pipeline saves after every batch: appending duplicates samples
            f.writelines(f"{s}\n" for s in objects)
        return [path]


class BatchMixingDenoiser(SuccessorDenoiser):
    def __call__(self, tokens, **conditioning):
        return super().__call__(tokens) + tokens.float().mean(dim=0, keepdim=True).unsqueeze(-1)


class BatchMixing(ToyDomain):
    name = "toy-batch-mixing"

    def load_denoiser(self, options, device):
        return BatchMixingDenoiser()


class StatefulInitial(ToyDomain):
    name = "toy-stateful"

    def __init__(self):
        self.calls = 0

    def initial_state(self, denoiser, options, n, device, offset=0):
        initial = super().initial_state(denoiser, options, n, device, offset)
        self.calls += 1  # draws its prompts from its own counter: the same seed and offset give other canvases
        initial.state.tokens[:, 0] = self.calls % 6
        initial.state.frozen[:, 0] = True
        return initial


class NoModel(ToyDomain):
    name = "toy-no-model"

    def load_denoiser(self, options, device):
        raise FileNotFoundError("weights/config.json")


class MaskedCanvas(ToyDomain):
    name = "toy-masked-frozen"

    def initial_state(self, denoiser, options, n, device, offset=0):
        initial = super().initial_state(denoiser, options, n, device, offset)
        return Initial(state=initial.state, requests=initial.requests[:1])  # one request for n rows


class RequiredOption(ToyDomain):
    name = "toy-required-option"

    @dataclass(kw_only=True)
    class Options(DomainOptions):
        length: int  # no default: `mdsample --domain toy-required-option` could never build its config


def register(*domains) -> None:
    class Plugin:
        @hookimpl
        def register_domains(self, register):
            for domain in domains:
                register(domain)

    plugin_manager.register_plugin(Plugin(), "broken-domains")


def failures_of(run) -> dict[str, str]:
    """The checks that failed (not those blocked by them), with their one-line reports."""
    with pytest.raises(ConformanceError) as info:
        run()
    return {f.check: str(f) for f in info.value.failures if not f.blocked_by}


def test_the_toy_domain_passes(toy_plugins):
    check_domain("toy")  # the control: the broken variants below differ from it by one method each


@pytest.mark.parametrize(
    ("domain", "check", "seen"),
    [
        (EmptyMetricsCrash(), "metrics_empty", r"ZeroDivisionError: division by zero \(at tests/test_conformance\.py:"),
        (AppendingSave(), "save", "samples.txt changed on the second save"),
        (BatchMixing(), "logits", "rows denoised independently"),
        (StatefulInitial(), "determinism", "positions differ between two runs"),
        (MaskedCanvas(), "initial_state", "1 entries"),
    ],
    ids=["metrics-crash-on-empty", "save-appends", "denoiser-mixes-rows", "stateful-canvas", "requests-per-batch"],
)
def test_a_broken_domain_fails_exactly_the_check_that_guards_it(toy_plugins, domain, check, seen):
    register(domain)
    found = failures_of(lambda: check_domain(domain.name))
    assert list(found) == [check]
    assert re.search(seen, found[check]), found[check]


def test_a_domain_without_its_model_reports_the_load_and_what_it_blocked(toy_plugins):
    register(NoModel())
    with pytest.raises(ConformanceError) as info:
        check_domain("toy-no-model")
    message = str(info.value)
    assert "fails 1 of 16 conformance checks" in message
    assert "shipped_model: expected load_denoiser to load the shipped model; saw FileNotFoundError" in message
    assert re.search(r"not run because a check they need failed: load_denoiser, initial_state, .*pipeline", message)


def test_an_option_without_default_is_reported_and_blocks_what_needs_options(toy_plugins):
    register(RequiredOption())
    with pytest.raises(ConformanceError) as info:
        check_domain("toy-required-option")
    failed = {f.check: f for f in info.value.failures}
    assert "missing 1 required keyword-only argument: 'length'" in failed["options"].seen
    assert failed["shipped_model"].blocked_by == "options" and failed["pipeline"].blocked_by == "options"


def test_an_unregistered_domain_is_reported(toy_plugins):
    found = failures_of(lambda: check_domain(EmptyMetricsCrash()))
    assert set(found) == {"registered", "pipeline", "metrics_empty"}
    assert "registered domains: toy" in found["registered"]


def test_skip_drops_checks_and_rejects_unknown_names(toy_plugins):
    register(EmptyMetricsCrash())
    check_domain("toy-empty-metrics", skip=["metrics_empty"])
    with pytest.raises(ValueError, match="unknown checks to skip: metric_empty"):
        check_domain("toy-empty-metrics", skip=["metric_empty"])


def test_pytest_helper_runs_one_check_at_a_time(toy_plugins):
    register(EmptyMetricsCrash())
    checks = dict(conformance_checks("toy-empty-metrics"))
    assert list(checks)[:3] == ["options", "identity", "defaults"] and len(checks) == 16
    checks["metrics"]()
    with pytest.raises(ConformanceError, match=r"^metrics_empty fails 1 of 1 conformance checks:\n  - metrics_empty"):
        checks["metrics_empty"]()


# -- broken rules ------------------------------------------------------------------------------------------------


class CommitsFrozen(Rule):
    """Adds every inactive position (frozen, committed, next block) to the top-1: the loop would hide it."""

    name = "commits-frozen"

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(stats.conf, ctx.active, torch.ones_like(ctx.k)) | ~ctx.active


class SometimesNothing(Rule):
    """Commits only positions with confidence > 0.99, possibly none."""

    name = "sometimes-nothing"

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return ctx.active & (stats.conf > 0.99)


class BatchK(Rule):
    """Uses the largest k of the batch for every row: a row's choice depends on the other rows."""

    name = "batch-k"

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(stats.conf, ctx.active, ctx.k.max().expand_as(ctx.k))


class ReadsK(Rule):
    """Declares device-only selection but lets top-k read k.max() back (no ctx.k_max): a sync every step."""

    name = "reads-k"
    device_only = True

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(stats.conf, ctx.active, ctx.k)


class CountsWrong(Rule):
    """Declares that it commits exactly k positions, but commits every confident one: decode would misplan chunks."""

    name = "counts-wrong"
    device_only = True
    fixed_count = True

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return ensure_progress(ctx.active & (stats.conf > 0.2), stats.conf, ctx.active)


@dataclass
class NamedConfig:
    name: str = "oops"


class NameInConfig(Rule):
    name = "name-in-config"
    Config = NamedConfig

    def select(self, stats: StepStats, ctx: StepContext) -> torch.Tensor:
        return top_k_mask(stats.conf, ctx.active, ctx.k)


@pytest.fixture
def broken_rules(toy_plugins):
    class Plugin:
        @hookimpl
        def register_samplers(self, register):
            for rule in (CommitsFrozen, SometimesNothing, BatchK, NameInConfig, ReadsK, CountsWrong):
                register(rule)

    plugin_manager.register_plugin(Plugin(), "broken-rules")


@pytest.mark.parametrize(
    ("rule", "check", "seen"),
    [
        (CommitsFrozen, "select_contract", r"commits only active masked positions \(mixed\); saw committed inactive"),
        (SometimesNothing, "select_contract", r"at least one committed position per row .*; saw nothing committed"),
        (BatchK, "rows_independent", "selected the same alone as in the batch"),
        (NameInConfig, "config", "may not have a field called 'name'"),
        (ReadsK, "sync_free", r"read nothing back from the device.*; saw reads through __int__"),
        (CountsWrong, "sync_free", r"exactly ctx.k positions per row"),
    ],
    ids=["commits-frozen", "commits-nothing", "batch-dependent", "name-in-config", "reads-k", "counts-wrong"],
)
def test_a_broken_rule_fails_exactly_the_check_that_guards_it(broken_rules, rule, check, seen):
    found = failures_of(lambda: check_rule(rule.name))
    assert list(found) == [check]
    assert re.search(seen, found[check]), found[check]


def test_a_rule_that_commits_frozen_positions_still_decodes(broken_rules):
    """Why select() is checked directly: through the loop, which filters its choice, the rule looks fine."""
    check_rule("commits-frozen", skip=["select_contract"])
