"""Shared fixtures of the molecule tests: a handful of real MOSES molecules and a tiny random house model."""

from __future__ import annotations

import pytest

# The first molecules of MOSES train and test (RDKit-canonical, as MOSES stores them).
MOSES_TRAIN = [
    "CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1",
    "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1",
]
MOSES_TEST = [
    "CC1C2CCC(C2)C1CN(CCO)C(=O)c1ccc(Cl)cc1",
    "COc1ccc(-c2cc(=O)c3c(O)c(OC)c(OC)cc3o2)cc1O",
]
MOSES_LIKE = MOSES_TRAIN + MOSES_TEST + [
    "Cc1ccc(NC(=O)C2CCN(S(=O)(=O)c3cccs3)CC2)cc1Br",
    "O=C(NCc1ccco1)c1cc2ccccc2[nH]1",
    "CC(=O)Nc1ccc(C(=O)OCC(=O)N2CCCC2)cc1F",
]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine run ~10x faster on one thread than on two contended ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A randomly initialised tiny ModernBertForMaskedLM saved like a trained molecule model (with vocab.json)."""
    from mdsample.models.house import build_house_model, house_config, save_house_model
    from mdsample.plugins.molecule.domain import MoleculeDomain, MoleculeOptions
    from mdsample.plugins.molecule.reference import vocab

    v = vocab("smiles")
    model = build_house_model(house_config(len(v), v.mask_id, v.pad_id, v.length, size="tiny"))
    out = tmp_path / "model"
    save_house_model(model, out)
    MoleculeDomain().save_assets(MoleculeOptions(representation="smiles"), out)
    return out
