"""mdsample.testing: the conformance kit a plugin author runs in their own test suite.

Like scikit-learn's ``check_estimator``, it holds a domain or a selection rule to the contracts the rest of mdsample
relies on, on a few rows and a few steps, and reports every broken promise at once: which check, what was expected,
what was seen (with the file and line of the plugin code that raised). Use it in one line::

    from mdsample.testing import check_domain, check_rule

    def test_my_domain():
        check_domain("dna")            # a registered name, or a Domain instance

    def test_my_rule():
        check_rule("spaced")           # a registered name, or a Rule subclass

or one pytest test per check::

    CHECKS = list(conformance_checks("dna"))

    @pytest.mark.parametrize("name, check", CHECKS, ids=[name for name, _ in CHECKS])
    def test_dna_conformance(name, check):
        check()

docs/plugins.md lists every check and what it guards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from mdsample import plugin_manager
from mdsample.core.rules import Rule
from mdsample.domain import Domain, DomainOptions
from mdsample.testing.domain_checks import domain_checks
from mdsample.testing.report import Check, ConformanceError, Failure, named, run_all
from mdsample.testing.rule_checks import rule_checks

__all__ = ["ConformanceError", "Failure", "check_domain", "check_rule", "conformance_checks"]


def _domain(domain: Domain | str) -> Domain:
    return plugin_manager.load_domain(domain) if isinstance(domain, str) else domain


def _rule(rule: type[Rule] | str) -> type[Rule]:
    return plugin_manager.get_rule(rule) if isinstance(rule, str) else rule


def _select(checks: list[tuple[str, Check]], skip: Iterable[str]) -> list[tuple[str, Check]]:
    skip = set(skip)
    unknown = skip - {name for name, _ in checks}
    if unknown:
        raise ValueError(f"unknown checks to skip: {', '.join(sorted(unknown))}; "
                         f"the checks are: {', '.join(name for name, _ in checks)}")
    return [(name, check) for name, check in checks if name not in skip]


def check_domain(
    domain: Domain | str,
    options: DomainOptions | None = None,
    *,
    n: int = 4,
    steps_per_block: int = 4,
    seed: int = 0,
    device: str = "cpu",
    skip: Iterable[str] = (),
) -> None:
    """Run every domain check; raise one ConformanceError (an AssertionError) listing all failures.

    ``options`` (default ``domain.Options()``) is the request checked, e.g. ``Options(model=PATH)`` for a model
    trained in the test, or a prompt; the ``shipped_model`` check always loads the default model. ``n`` rows are
    decoded with ``steps_per_block`` steps per block. ``skip`` names checks that do not apply (e.g.
    ``shipped_model`` for a domain that ships no weights).
    """
    subject = _domain(domain)
    checks = domain_checks(subject, options, n=n, steps_per_block=steps_per_block, seed=seed, device=device)
    run_all(f"domain {subject.name!r}", _select(checks, skip))


def check_rule(rule: type[Rule] | str, *, seed: int = 0, device: str = "cpu", skip: Iterable[str] = ()) -> None:
    """Run every rule check; raise one ConformanceError (an AssertionError) listing all failures."""
    subject = _rule(rule)
    checks = rule_checks(subject, seed=seed, device=device)
    run_all(f"rule {getattr(subject, 'name', subject)!r}", _select(checks, skip))


def conformance_checks(subject: Domain | type[Rule] | str, *, kind: str = "domain", **kwargs: Any) -> Iterator[
    tuple[str, Check]
]:
    """(name, check) for every check of ``subject``; ``check()`` raises ConformanceError naming that check.

    ``subject`` is a Domain instance, a Rule subclass, or a registered name (``kind`` "domain" or "rule" says which
    registry a name refers to). ``kwargs`` are those of ``check_domain`` / ``check_rule`` (``skip`` included).
    The checks share their expensive steps (model, decoded batch), so each runs once whatever the order.
    """
    skip = kwargs.pop("skip", ())
    if isinstance(subject, type) and issubclass(subject, Rule) or kind == "rule":
        checks = rule_checks(_rule(subject), **kwargs)
    elif kind == "domain":
        checks = domain_checks(_domain(subject), **kwargs)
    else:
        raise ValueError(f"kind must be 'domain' or 'rule', got {kind!r}")
    return named(_select(checks, skip))
