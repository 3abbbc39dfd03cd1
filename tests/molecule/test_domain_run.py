import pytest
import torch

from mdsample.core import decode
from mdsample.core.rules.klass import KLASS
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.molecule.domain import WEIGHTS_DIR, MoleculeDomain, MoleculeOptions


def _run(domain, options, n=8, seed=0):
    denoiser = domain.load_denoiser(options, torch.device("cpu"))
    initial = domain.initial_state(denoiser, options, n, torch.device("cpu"))
    before = initial.state.tokens.clone()
    gen = torch.Generator().manual_seed(seed)
    result = decode(denoiser, initial.state, KLASS(), chooser=TokenChooser(temperature=1.0), generator=gen)
    return initial, before, result


def test_unconditional_run_with_a_tiny_random_model(tiny_model_dir, tmp_path):
    domain = MoleculeDomain()
    options = MoleculeOptions(model=str(tiny_model_dir))
    initial, _, result = _run(domain, options)
    assert not (result.tokens == initial.vocab.mask_id).any()
    assert (result.tokens[:, 0] == initial.vocab.bos_id).all()
    objects = domain.decode(result.tokens, initial)
    assert len(objects) == 8 and all(isinstance(o, str) for o in objects)
    metrics = domain.metrics(objects, options, initial)
    assert 0.0 <= metrics["valid"] <= 1.0
    paths = domain.save(objects, tmp_path / "run", initial)
    lines = (tmp_path / "run" / "samples.smi").read_text().splitlines()
    assert paths[0].name == "samples.smi" and len(lines) == 8


def test_same_seed_same_molecules(tiny_model_dir):
    domain, options = MoleculeDomain(), MoleculeOptions(model=str(tiny_model_dir))
    a = _run(domain, options, seed=3)[2].tokens
    b = _run(domain, options, seed=3)[2].tokens
    assert torch.equal(a, b)


@pytest.mark.parametrize("template", ["CC(=O)N{8}", "prefix:c1ccc{2}", "c1ccc({3})cc1"])
def test_frozen_template_tokens_survive_sampling(tiny_model_dir, template):
    domain = MoleculeDomain()
    options = MoleculeOptions(model=str(tiny_model_dir), prompt=template)
    initial, before, result = _run(domain, options)
    frozen = initial.state.frozen
    assert frozen[:, 0].all() and frozen.sum() > 1
    assert torch.equal(result.tokens[frozen], before[frozen])
    if not template.startswith("prefix:"):
        # exact templates: the text is the template with its slots filled (ill-formed rows: the raw row text)
        head = template.split("{")[0]
        assert all(o.removeprefix("<bos>").startswith(head) for o in domain.decode(result.tokens, initial))


def test_missing_shipped_weights_is_actionable(monkeypatch, tmp_path):
    import mdsample.plugins.molecule.domain as mod

    monkeypatch.setattr(mod, "WEIGHTS_DIR", tmp_path / "none")
    with pytest.raises(MissingFileError, match="mdsample train --domain molecule"):
        MoleculeDomain().load_denoiser(MoleculeOptions(), torch.device("cpu"))
    assert WEIGHTS_DIR.name == "weights"


def test_representation_mismatch_is_reported(tiny_model_dir):
    with pytest.raises(ConfigError, match="representation=smiles"):
        MoleculeDomain().load_denoiser(MoleculeOptions(model=str(tiny_model_dir), representation="selfies"), "cpu")


def test_defaults_sample_with_mode_confidence():
    d = MoleculeDomain().defaults()
    assert d["decode"] == {"temperature": 1.0, "confidence": "mode", "correct_steps": 50, "correct_positions": 6}
    assert d["n"] == 32 and "klass" in d["samplers"]


def test_plugin_registers_domain_and_data_command():
    from mdsample.plugins import molecule

    domains, commands = [], []
    molecule.register_domains(domains.append)
    molecule.register_commands(lambda *a: commands.append(a))
    assert domains[0].name == "molecule" and commands[0][0] == "data"


def test_training_side_needs_no_rdkit():
    """GPU training images may lack RDKit: the domain, its vocabularies and encoding must import without it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['rdkit'] = None\n"
        "from mdsample.plugins.molecule.domain import MoleculeDomain, MoleculeOptions\n"
        "from mdsample.plugins.molecule.canvas import encode_smiles\n"
        "from mdsample.plugins.molecule.reference import vocab\n"
        "rows, dropped = encode_smiles(['CCO', 'c1ccccc1'], vocab('selfies'))\n"
        "assert rows.shape == (2, 56) and dropped == 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
