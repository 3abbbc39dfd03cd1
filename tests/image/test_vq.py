import dataclasses

import numpy as np
import pytest
import torch

from mdsample.errors import ConfigError
from mdsample.plugins.image import glyphs, vq

TINY = vq.VQTrainConfig(codebook_size=16, channels=[8, 8, 8], latent_channels=4, steps=6, batch_size=8,
                        restart_every=3, log_every=3)


def _images(n_fonts: int = 2) -> np.ndarray:
    return glyphs.render(glyphs.font_split("AB")["train"][:n_fonts], "AB", 2, workers=1).images


def test_round_trip_shapes_and_ranges():
    model = vq.build_vqvae(TINY).eval()
    images = torch.from_numpy(_images())
    codes = vq.encode(model, images)
    assert codes.shape == (len(images), 8 * 8) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < TINY.codebook_size
    pixels = vq.decode(model, codes)
    assert pixels.shape == (len(images), 1, glyphs.SIZE, glyphs.SIZE)
    assert 0.0 <= float(pixels.min()) and float(pixels.max()) <= 1.0
    assert vq.latent_grid(model, glyphs.SIZE) == 8


def test_decode_looks_codes_up_in_the_codebook():
    model = vq.build_vqvae(TINY).eval()
    codes = torch.randint(TINY.codebook_size, (3, 64))
    latents = model.quantize.embedding.weight[codes].view(3, 8, 8, -1).permute(0, 3, 1, 2)
    direct = (model.decoder(model.post_quant_conv(latents)) + 1) / 2
    assert torch.allclose(vq.decode(model, codes), direct.clamp(0, 1), atol=1e-5)


def test_training_lowers_the_reconstruction_error_and_restarts_dead_codes(capsys):
    images = _images()
    cfg = dataclasses.replace(TINY, steps=120, restart_every=40, log_every=40)  # past the 100-step warmup
    torch.manual_seed(0)  # the initial weights train_vqvae(seed=0) starts from
    before = vq.reconstruction_stats(vq.build_vqvae(cfg).eval(), images)
    model, stats = vq.train_vqvae(images, images, cfg, torch.device("cpu"), seed=0)
    assert stats["val_mse"] < 0.8 * before["val_mse"]
    out = capsys.readouterr().out
    assert "vq step     40/120" in out and "restarted" in out


def test_restart_reseeds_exactly_the_unused_codes():
    model = vq.build_vqvae(TINY)
    usage = torch.ones(TINY.codebook_size)
    usage[[2, 5]] = 0
    weights = model.quantize.embedding.weight.detach().clone()
    latents = torch.randn(2, TINY.latent_channels, 8, 8)
    n = vq._restart_dead_codes(model, usage, latents, torch.Generator().manual_seed(0))
    after = model.quantize.embedding.weight.detach()
    changed = (after != weights).any(dim=1)
    assert n == 2 and changed.nonzero().flatten().tolist() == [2, 5]
    pool = latents.permute(0, 2, 3, 1).reshape(-1, TINY.latent_channels)
    assert all((pool == after[i]).all(dim=1).any() for i in (2, 5))


def test_bad_channels_are_config_errors():
    with pytest.raises(ConfigError, match="vq_channels"):
        vq.build_vqvae(vq.VQTrainConfig(channels=[8, 8]))
