import numpy as np
import pytest
import selfies

from mdsample.plugins.molecule.canvas import decode_row, encode_smiles, encode_tokens
from mdsample.plugins.molecule.reference import vocab
from mdsample.plugins.molecule.tokenizers import SPECIALS, split_selfies, split_smiles

from .conftest import MOSES_LIKE


def test_smiles_regex_splits_atoms_not_characters():
    assert split_smiles("ClC[C@@H](Br)c1ccc%12[nH]1") == [
        "Cl", "C", "[C@@H]", "(", "Br", ")", "c", "1", "c", "c", "c", "%12", "[nH]", "1",
    ]
    assert split_smiles("C^C") is None


@pytest.mark.parametrize("smiles", MOSES_LIKE)
def test_smiles_canvas_round_trip(smiles):
    v = vocab("smiles")
    row = encode_tokens(split_smiles(smiles), v)
    assert row[0] == v.bos_id and v.eos_id in row
    assert decode_row(row.tolist(), v) == smiles


@pytest.mark.parametrize("smiles", MOSES_LIKE)
def test_selfies_canvas_round_trip(smiles):
    from rdkit import Chem

    v = vocab("selfies")
    rows, dropped = encode_smiles([smiles], v)
    assert dropped == 0
    assert split_selfies(selfies.encoder(smiles)) is not None
    back = decode_row(rows[0].tolist(), v)
    assert Chem.CanonSmiles(back) == Chem.CanonSmiles(smiles)


def test_vocab_starts_with_specials_and_fits_uint8():
    for rep in ("smiles", "selfies"):
        v = vocab(rep)
        assert v.tokens[:5] == SPECIALS and len(v) < 256
        assert (v.pad_id, v.bos_id, v.eos_id, v.mask_id, v.unk_id) == (0, 1, 2, 3, 4)


def test_too_long_or_unknown_is_dropped():
    v = vocab("smiles")
    rows, dropped = encode_smiles(["C" * (v.length - 1), "C" * (v.length - 2), "[Se]C", "CC"], v)
    assert dropped == 2 and rows.shape == (2, v.length)


@pytest.mark.parametrize("rep", ["smiles", "selfies"])
def test_ill_formed_rows_decode_to_unparseable_text(rep):
    from mdsample.plugins.molecule.chem import to_mol

    v = vocab(rep)
    c = v.index["C" if rep == "smiles" else "[C]"]
    no_eos = [v.bos_id] + [c] * (v.length - 1)
    pad_inside = [v.bos_id, c, v.pad_id, c, v.eos_id] + [v.pad_id] * (v.length - 5)
    empty = [v.bos_id, v.eos_id] + [v.pad_id] * (v.length - 2)
    mask_left = [v.bos_id, c, v.mask_id, v.eos_id] + [v.pad_id] * (v.length - 4)
    out_of_range = [v.bos_id, 999, v.eos_id] + [v.pad_id] * (v.length - 3)
    for ids in (no_eos, pad_inside, empty, mask_left, out_of_range):
        assert to_mol(decode_row(ids, v)) is None
    tail_garbage = [v.bos_id, c, c, v.eos_id, c, v.mask_id] + [v.pad_id] * (v.length - 6)
    assert decode_row(tail_garbage, v) == "CC"


def test_random_rows_never_crash():
    rng = np.random.default_rng(0)
    for rep in ("smiles", "selfies"):
        v = vocab(rep)
        for row in rng.integers(0, len(v) + 3, size=(200, v.length)):
            assert isinstance(decode_row(row.tolist(), v), str)
