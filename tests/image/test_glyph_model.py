import json

import pytest
import torch

from mdsample.core import decode
from mdsample.core.rules.maskgit import MaskGIT
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample.plugins.image.domain import ImageDomain, ImageOptions
from mdsample.plugins.image.layout import GlyphLayout

CPU = torch.device("cpu")


def test_trained_directory_has_every_stage(tiny_glyph_model):
    for part in ("config.json", "model.safetensors", "glyph.json", "vqvae/config.json",
                 "vqvae/diffusion_pytorch_model.safetensors", "classifier/diffusion_pytorch_model.safetensors",
                 "MODEL_CARD.md", "train_log.jsonl"):
        assert (tiny_glyph_model / part).is_file(), part
    layout = GlyphLayout.load(tiny_glyph_model / "glyph.json")
    assert (layout.codebook_size, layout.grid, layout.classes) == (16, 8, "ABC")
    card = (tiny_glyph_model / "MODEL_CARD.md").read_text()
    assert "## Image domain" in card and "held-out fonts" in card and card.count("sha256 `") == 3
    log = [json.loads(line) for line in (tiny_glyph_model / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 4 and "val_loss" in log[-1]


def test_weights_are_float16(tiny_glyph_model):
    from safetensors import safe_open

    for path in tiny_glyph_model.rglob("*.safetensors"):
        with safe_open(str(path), "pt") as f:
            assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys() if f.get_tensor(k).is_floating_point())


def _sample(model_dir, n=5, label=None, guidance=0.0, seed=0):
    domain = ImageDomain()
    options = ImageOptions(model=str(model_dir), label=label, guidance=guidance)
    denoiser = domain.load_denoiser(options, CPU)
    initial = domain.initial_state(denoiser, options, n, CPU)
    gen = torch.Generator().manual_seed(seed)
    result = decode(denoiser, initial.state, MaskGIT(), chooser=TokenChooser(temperature=1.0), generator=gen)
    return domain, options, denoiser, initial, result


def test_class_token_is_frozen_and_image_positions_take_codes(tiny_glyph_model):
    _, _, denoiser, initial, result = _sample(tiny_glyph_model, label="B")
    layout = denoiser.layout
    assert (result.tokens[:, 0] == layout.class_token(1)).all()
    assert (result.tokens[:, 1:] < layout.codebook_size).all()
    assert [r["label"] for r in initial.requests] == ["B"] * 5


def test_round_robin_labels_continue_across_batches(tiny_glyph_model):
    domain = ImageDomain()
    options = ImageOptions(model=str(tiny_glyph_model))
    denoiser = domain.load_denoiser(options, CPU)
    first = domain.initial_state(denoiser, options, 4, CPU)
    second = domain.initial_state(denoiser, options, 4, CPU, offset=4)
    labels = [r["label"] for r in first.requests + second.requests]
    assert labels == list("ABCABCAB")


def test_guidance_combines_conditional_and_unconditional_logits(tiny_glyph_model):
    domain = ImageDomain()
    plain = domain.load_denoiser(ImageOptions(model=str(tiny_glyph_model)), CPU)
    guided = domain.load_denoiser(ImageOptions(model=str(tiny_glyph_model), guidance=2.0), CPU)
    layout = plain.layout
    tokens = torch.full((2, layout.length), layout.mask_id)
    tokens[:, 0] = torch.tensor([layout.class_token(0), layout.class_token(2)])
    uncond = tokens.clone()
    uncond[:, 0] = layout.null_id
    cond_lp = plain.house(tokens).log_softmax(-1)
    free_lp = plain.house(uncond).log_softmax(-1)
    expected = (cond_lp + 2.0 * (cond_lp - free_lp))[..., : layout.codebook_size]
    got = guided(tokens)
    assert torch.allclose(got[..., : layout.codebook_size], expected, atol=1e-5)
    assert torch.isinf(got[..., layout.codebook_size :]).all()
    assert not torch.allclose(got[..., : layout.codebook_size], plain(tokens)[..., : layout.codebook_size])


def test_same_seed_same_images(tiny_glyph_model):
    a = _sample(tiny_glyph_model, seed=3)[4].tokens
    b = _sample(tiny_glyph_model, seed=3)[4].tokens
    c = _sample(tiny_glyph_model, seed=4)[4].tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_decode_save_and_metrics(tiny_glyph_model, tmp_path):
    domain, options, _, initial, result = _sample(tiny_glyph_model, n=6)
    images = domain.decode(result.tokens, initial)
    assert len(images) == 6 and images[0].size == (32, 32) and images[0].mode == "L"
    paths = domain.save(images, tmp_path, initial)
    assert [p.name for p in paths] == ["grid.png", "samples.jsonl"]
    assert len(list((tmp_path / "images").glob("*.png"))) == 6
    values = domain.metrics(images, options, initial)
    assert set(values) == {"fd_glyph", "is_glyph", "accuracy", "pixel_diversity"}
    assert values["fd_glyph"] >= 0 and 0 <= values["accuracy"] <= 1


def test_unknown_class_and_prompt_are_rejected(tiny_glyph_model):
    domain = ImageDomain()
    denoiser = domain.load_denoiser(ImageOptions(model=str(tiny_glyph_model)), CPU)
    with pytest.raises(UnknownChoiceError, match="choose one of: A, B, C"):
        domain.initial_state(denoiser, ImageOptions(label="Z"), 2, CPU)
    with pytest.raises(ConfigError, match="--class"):
        domain.initial_state(denoiser, ImageOptions(prompt="an A"), 2, CPU)
    with pytest.raises(ConfigError, match="guidance"):
        domain.load_denoiser(ImageOptions(model=str(tiny_glyph_model), guidance=-1), CPU)


def test_missing_shipped_weights_is_actionable(monkeypatch, tmp_path):
    import mdsample.plugins.image.domain as mod

    monkeypatch.setattr(mod, "WEIGHTS_DIR", tmp_path / "none")
    with pytest.raises(MissingFileError, match="mdsample train --domain image"):
        ImageDomain().load_denoiser(ImageOptions(), CPU)


def test_unknown_model_paths_are_actionable(tmp_path):
    with pytest.raises(MissingFileError, match="neither a glyph model"):
        ImageDomain().load_denoiser(ImageOptions(model=str(tmp_path)), CPU)
    with pytest.raises(MissingFileError, match="not a directory here"):
        ImageDomain().load_denoiser(ImageOptions(model=str(tmp_path / "missing")), CPU)


def test_train_data_needs_a_tokenizer():
    with pytest.raises(ConfigError, match="domain.vqvae"):
        ImageDomain().train_data(ImageOptions())


def test_train_data_layout(tiny_glyph_model):
    data = ImageDomain().train_data(ImageOptions(vqvae=str(tiny_glyph_model / "vqvae"), classes="ABC", variants=2,
                                                 reference_variants=1, cond_drop=0.5))
    layout = GlyphLayout.load(tiny_glyph_model / "glyph.json")
    n_train_fonts = 17
    assert data.train.shape == (round(1.5 * n_train_fonts * 3 * 2), 65) and data.frozen_prefix == 1
    first = data.train[:, 0]
    assert ((first >= layout.codebook_size) & (first <= layout.null_id)).all()
    assert (first == layout.null_id).sum() == n_train_fonts * 3
    assert (data.train[:, 1:] < layout.codebook_size).all() and (data.val[:, 0] < layout.null_id).all()
    assert (data.vocab_size, data.mask_id) == (layout.vocab_size, layout.mask_id)


def test_domain_passes_the_conformance_kit(tiny_glyph_model):
    from mdsample.testing import check_domain

    check_domain(ImageDomain(), ImageOptions(model=str(tiny_glyph_model)), skip=["shipped_model"])
