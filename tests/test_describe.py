"""Plugins' descriptions (mdsample.describe) say what the loaded objects are, and are read without loading them."""

from __future__ import annotations

import dataclasses

import pytest

from mdsample import plugin_manager
from mdsample.describe import DomainInfo, SamplerInfo, domain_mismatches, sampler_mismatches
from mdsample.errors import PluginError
from mdsample.hookspecs import hookimpl


@pytest.fixture
def first_party(monkeypatch):
    monkeypatch.setenv("MDSAMPLE_PLUGINS", "samplers,text,image,molecule")
    plugin_manager.reset()


@pytest.mark.parametrize("name", ["ar_med", "confidence", "eb", "entropy", "klass", "margin", "maskgit", "med",
                                  "random", "threshold"])
def test_builtin_rules_are_described_faithfully(first_party, name):
    info = plugin_manager.sampler_info(name)
    rule = plugin_manager.get_rule(name)
    assert sampler_mismatches(info, rule) == []
    assert info.config is rule.Config
    assert info.description == rule.__doc__.strip().splitlines()[0]


@pytest.mark.parametrize("name", ["image", "molecule", "text"])
def test_first_party_domains_are_described_faithfully(first_party, name):
    assert domain_mismatches(plugin_manager.domain_info(name), plugin_manager.load_domain(name)) == []


def test_a_description_that_lies_or_cannot_load_is_a_plugin_error(monkeypatch):
    @dataclasses.dataclass
    class Options:
        size: int = 3

    class Liar:
        @hookimpl
        def register_domains(self, register):
            register(DomainInfo("liar", "says one thing", "mdsample.plugins.text.domain:TextDomain", Options))
            register(DomainInfo("gone", "imports nothing", "no_such_module_here:Domain"))

        @hookimpl
        def register_samplers(self, register):
            register(SamplerInfo("ghost", "a rule", lambda: (_ for _ in ()).throw(RuntimeError("boom")), Options))

    monkeypatch.setenv("MDSAMPLE_PLUGINS", "")
    plugin_manager.reset()
    plugin_manager.register_plugin(Liar(), "liar")
    assert plugin_manager.available_domains() == ["gone", "liar"]  # listed without loading anything
    with pytest.raises(PluginError, match="described domain 'liar' but loaded one called 'text'"):
        plugin_manager.load_domain("liar")
    with pytest.raises(PluginError, match="plugin 'liar' could not load domain 'gone': ModuleNotFoundError"):
        plugin_manager.load_domain("gone")
    with pytest.raises(PluginError, match="could not load sampler 'ghost': RuntimeError: boom"):
        plugin_manager.get_rule("ghost")
