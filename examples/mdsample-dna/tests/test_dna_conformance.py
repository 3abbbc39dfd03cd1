"""The conformance kit on the installed plugin, one pytest test per check (the pattern docs/plugins.md shows)."""

from __future__ import annotations

import pytest
from mdsample_dna.domain import DnaDomain, DnaOptions

from mdsample.testing import conformance_checks

DOMAIN_CHECKS = list(conformance_checks("dna"))
PROMPT_CHECKS = list(conformance_checks(DnaDomain(), options=DnaOptions(prompt="NNNNNNNNTATAAANN"), n=3))
RULE_CHECKS = list(conformance_checks("spaced", kind="rule"))


@pytest.mark.parametrize(("name", "check"), DOMAIN_CHECKS, ids=[name for name, _ in DOMAIN_CHECKS])
def test_dna_domain(name, check):
    check()


@pytest.mark.parametrize(("name", "check"), PROMPT_CHECKS, ids=[name for name, _ in PROMPT_CHECKS])
def test_dna_domain_with_a_prompt(name, check):
    check()


@pytest.mark.parametrize(("name", "check"), RULE_CHECKS, ids=[name for name, _ in RULE_CHECKS])
def test_spaced_rule(name, check):
    check()
