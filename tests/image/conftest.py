"""Shared fixtures of the image tests: a glyph cache in a temporary directory and a tiny trained glyph model.

The model is trained once per session through the real CLI (``mdsample train --domain image``) with a tiny
configuration: three classes, two images per class and font, a few steps per stage. It is useless as a generator
but exercises every stage and the directory layout that sampling loads.
"""

from __future__ import annotations

import pytest

TINY_TRAIN = [
    "train.size=tiny", "train.steps=4", "train.batch_size=8", "train.eval_every=4", "train.eval_batches=1",
    "train.log_every=2", "train.warmup=1", "train.device=cpu",
    "domain.classes=ABC", "domain.variants=2", "domain.reference_variants=1",
    "domain.vq_steps=3", "domain.vq_batch_size=8", "domain.vq_channels=[8,8,8]", "domain.vq_latent_channels=4",
    "domain.vq_codebook_size=16", "domain.classifier_steps=3",
]


@pytest.fixture(scope="session")
def glyph_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("mdsample-data")


@pytest.fixture(autouse=True)
def isolated_data(glyph_cache, monkeypatch):
    """Rendered glyphs go to a per-session temporary cache, never to the user's."""
    monkeypatch.setenv("MDSAMPLE_DATA", str(glyph_cache))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine run faster on one thread than on two contended ones."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_glyph_model(tmp_path_factory, glyph_cache):
    """A glyph model directory trained by ``mdsample train --domain image`` with the tiny configuration."""
    import torch

    from mdsample.cli import main

    out = tmp_path_factory.mktemp("glyph-model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MDSAMPLE_DATA", str(glyph_cache))
        code = main(["train", "--domain", "image", "--out", str(out), *TINY_TRAIN])
    torch.set_num_threads(threads)
    assert code == 0
    return out
