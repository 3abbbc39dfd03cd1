import pytest

from mdsample.errors import ConfigError
from mdsample.plugins.molecule import prompt
from mdsample.plugins.molecule.reference import vocab


def test_exact_template_freezes_given_tokens_eos_and_pad():
    v = vocab("smiles")
    t = prompt.parse("CC(=O)N{3}", v)
    ix = v.index
    assert t.exact and t.items == (ix["C"], ix["C"], ix["("], ix["="], ix["O"], ix[")"], ix["N"], None, None, None)
    state = prompt.canvas(t, v, 4)
    row, frozen = state.tokens[0], state.frozen[0]
    assert row[0] == v.bos_id and row[11] == v.eos_id and (row[12:] == v.pad_id).all()
    assert frozen[:8].all() and not frozen[8:11].any() and frozen[11:].all()
    assert state.masked[0].nonzero().flatten().tolist() == [8, 9, 10]
    assert state.gen_start == 1 and state.tokens.shape == (4, v.length)


def test_prefix_template_leaves_the_tail_to_the_model():
    v = vocab("smiles")
    state = prompt.canvas(prompt.parse("prefix:c1ccc{2}", v), v, 2)
    frozen = state.frozen[0]
    assert frozen[:6].all() and not frozen[6:].any()  # BOS + c 1 c c c
    assert state.masked[0, 6:].all()


def test_slots_inside_ring_template():
    v = vocab("smiles")
    t = prompt.parse("c1ccc({3})cc1", v)
    assert t.items.count(None) == 3 and len(t.items) == 13


def test_empty_prompt_is_unconditional():
    v = vocab("smiles")
    for p in (None, "", "prefix:"):
        state = prompt.canvas(prompt.parse(p, v), v, 3)
        assert state.frozen[:, 0].all() and not state.frozen[:, 1:].any() and state.masked[:, 1:].all()


def test_selfies_template():
    v = vocab("selfies")
    t = prompt.parse("[C][=O]{2}", v)
    assert t.items[:2] == (v.index["[C]"], v.index["[=O]"]) and t.items[2:] == (None, None)


@pytest.mark.parametrize("bad", ["CC[Xx]{2}", "C{0}", "C" * 60, "C^C", "{99}"])
def test_malformed_templates_raise_config_error(bad):
    with pytest.raises(ConfigError):
        prompt.parse(bad, vocab("smiles"))
