import argparse
import gzip
import zipfile

import pytest

from mdsample.errors import ConfigError, DataNotPreparedError
from mdsample.plugins.molecule import command, data
from mdsample.plugins.molecule.corpus import cache_path, encode_split
from mdsample.plugins.molecule.domain import MoleculeDomain, MoleculeOptions
from mdsample.plugins.molecule.reference import vocab

from .conftest import MOSES_LIKE, MOSES_TEST, MOSES_TRAIN

SPLITS = {"train": MOSES_TRAIN + MOSES_LIKE[4:] + ["C" * 80], "test": MOSES_TEST, "test_scaffolds": MOSES_TEST[:1]}


def _csv(smiles):
    return ("SMILES\n" + "".join(s + "\n" for s in smiles)).encode()


@pytest.fixture
def wheel(tmp_path):
    path = tmp_path / "molsets-0.3.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for split, smiles in SPLITS.items():
            zf.writestr(f"moses/dataset/data/{split}.csv.gz", gzip.compress(_csv(smiles)))
        zf.writestr("moses/metrics/mcf.csv", "names,smarts\nMCF1,[#6]=&!@[#6]-[#6]#[#7]\n")
        zf.writestr("moses/metrics/wehi_pains.csv", '"[#7]-[#7]=[#7]"   ,"<regId=azo>"\n')
        zf.writestr("moses/other.py", "")
    return path


def test_prepare_from_wheel_records_and_verifies_checksums(tmp_path, wheel):
    dest = tmp_path / "data"
    sums = data.prepare(dest, wheel=wheel)
    assert set(sums) == {"train.csv.gz", "test.csv.gz", "test_scaffolds.csv.gz", "mcf.csv", "wehi_pains.csv"}
    assert data.load_split("test", dest) == MOSES_TEST
    assert data.has_file("mcf.csv", dest) and not data.has_file("test_stats.npz", dest)
    (dest / "test.csv.gz").write_bytes(gzip.compress(_csv(["CCO"])))
    data._verified.cache_clear()
    with pytest.raises(DataNotPreparedError, match="checksum"):
        data.load_split("test", dest)


def test_prepare_from_csv_dir(tmp_path):
    src = tmp_path / "csv"
    src.mkdir()
    for split, smiles in SPLITS.items():
        (src / f"{split}.csv").write_bytes(_csv(smiles))
    dest = tmp_path / "data"
    data.prepare(dest, csv_dir=src)
    assert data.load_split("train", dest) == SPLITS["train"]


def test_absent_data_names_the_command(tmp_path):
    with pytest.raises(DataNotPreparedError, match="mdsample data --domain molecule"):
        data.load_split("train", tmp_path / "nothing")
    with pytest.raises(DataNotPreparedError, match="mdsample data --domain molecule"):
        MoleculeDomain().train_data(MoleculeOptions(data_dir=str(tmp_path / "nothing")))


def test_default_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("MDSAMPLE_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path / "molecule"


def test_prepare_needs_exactly_one_source(tmp_path, wheel):
    with pytest.raises(ConfigError):
        data.prepare(tmp_path, wheel=wheel, csv_dir=tmp_path)


@pytest.mark.parametrize("rep", ["smiles", "selfies"])
def test_train_data_encodes_and_caches(tmp_path, wheel, rep):
    dest = tmp_path / "data"
    data.prepare(dest, wheel=wheel)
    td = MoleculeDomain().train_data(MoleculeOptions(representation=rep, data_dir=str(dest)))
    v = vocab(rep)
    assert td.train.shape == (len(SPLITS["train"]) - 1, v.length)  # the 80-carbon chain does not fit
    assert td.val.shape == (2, v.length) and td.frozen_prefix == 1
    assert (td.vocab_size, td.mask_id, td.pad_id) == (len(v), v.mask_id, v.pad_id)
    assert (td.train[:, 0] == v.bos_id).all()
    assert cache_path(v, "train", dest).is_file()
    again = encode_split("train", v, dest)
    assert (again == td.train.numpy()).all()


def test_data_command_with_wheel(tmp_path, wheel):
    parser = argparse.ArgumentParser()
    command.configure(parser)
    args = parser.parse_args(["--domain", "molecule", "--wheel", str(wheel), "--dest", str(tmp_path / "d"),
                              "--encode", "smiles"])
    assert command.run(args) == 0
    assert (tmp_path / "d" / "manifest.json").is_file()
    assert cache_path(vocab("smiles"), "test", tmp_path / "d").is_file()


def test_build_reference_from_prepared_data(tmp_path, wheel):
    from mdsample.plugins.molecule import hashset
    from mdsample.plugins.molecule.build_reference import build_reference
    from mdsample.plugins.molecule.tokenizers import Vocab

    dest, out = tmp_path / "data", tmp_path / "ref"
    data.prepare(dest, wheel=wheel)
    build_reference(steps=("vocab", "hashes", "filters"), out=out, dest=dest, processes=1, log=lambda _: None)
    assert Vocab.load(out / "vocab_smiles.json").length == 88  # the 80-carbon chain sets the length
    assert hashset.contains(hashset.load(out / "train_hashes.bin"), MOSES_TRAIN + ["CCO"]).tolist() == [1, 1, 0]
    assert {p.name for p in out.iterdir()} >= {"lengths.json", "vocab_selfies.json", "filters.csv.gz"}
    with gzip.open(out / "filters.csv.gz", "rt") as f:  # MCF first, then PAINS with its padding kept, as MOSES reads it
        assert f.read().splitlines() == ["name,smarts", "MCF1,[#6]=&!@[#6]-[#6]#[#7]", "<regId=azo>,[#7]-[#7]=[#7]   "]
