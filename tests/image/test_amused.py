"""The aMUSEd adapter on tiny components built from configs and saved in the pipeline's directory layout."""

import json

import pytest
import torch

from mdsample.core import decode
from mdsample.core.rules.maskgit import MaskGIT
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.image.domain import ImageDomain, ImageOptions

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_amused(tmp_path_factory):
    """vqvae/ transformer/ text_encoder/ tokenizer/ scheduler/ with a 4x4 latent grid and a 16-code codebook."""
    from diffusers import AmusedScheduler, UVit2DModel, VQModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("amused")
    VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8), layers_per_block=1,
            latent_channels=4, num_vq_embeddings=16, norm_num_groups=4, sample_size=8,
            lookup_from_codebook=True).save_pretrained(root / "vqvae")
    UVit2DModel(hidden_size=32, cond_embed_dim=16, micro_cond_encode_dim=4, micro_cond_embed_dim=20,
                encoder_hidden_size=32, vocab_size=17, codebook_size=16, in_channels=16, block_out_channels=32,
                num_res_blocks=1, block_num_heads=2, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=64, sample_size=4).save_pretrained(root / "transformer")
    AmusedScheduler(mask_token_id=16).save_pretrained(root / "scheduler")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=8).save_pretrained(
        root / "tokenizer")
    config = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=2, max_position_embeddings=8, projection_dim=16, bos_token_id=0,
                            eos_token_id=1, pad_token_id=1)
    CLIPTextModelWithProjection(config).save_pretrained(root / "text_encoder")
    return root


def test_loads_with_the_scheduler_mask_id(tiny_amused):
    denoiser = ImageDomain().load_denoiser(ImageOptions(model=str(tiny_amused)), CPU)
    assert (denoiser.mask_id, denoiser.vocab_size, denoiser.grid, denoiser.image_size) == (16, 17, 4, 8)


def test_conditioning_follows_the_pipeline(tiny_amused):
    denoiser = ImageDomain().load_denoiser(ImageOptions(model=str(tiny_amused), aesthetic_score=5.5), CPU)
    cond = denoiser.encode_prompts(["a cat", "a dog"])
    assert set(cond) == {"encoder_hidden_states", "pooled_text_emb", "micro_conds"}
    assert cond["encoder_hidden_states"].shape == (2, 8, 32) and cond["pooled_text_emb"].shape == (2, 16)
    assert cond["micro_conds"].tolist() == [[8.0, 8.0, 0.0, 0.0, 5.5]] * 2
    ids = denoiser.tokenizer(["a cat"], return_tensors="pt", padding="max_length", max_length=8).input_ids
    out = denoiser.text_encoder(ids, output_hidden_states=True)
    assert torch.allclose(cond["encoder_hidden_states"][0], out.hidden_states[-2][0])
    tokens = torch.full((2, 16), 16)
    logits = denoiser(tokens, **cond)
    direct = denoiser.transformer(tokens.view(2, 4, 4), **cond).float()
    assert logits.shape == (2, 16, 17) and torch.isinf(logits[..., 16]).all()
    assert torch.allclose(logits[..., :16], direct.flatten(2).transpose(1, 2))


def test_classifier_free_guidance(tiny_amused):
    plain = ImageDomain().load_denoiser(ImageOptions(model=str(tiny_amused)), CPU)
    guided = ImageDomain().load_denoiser(ImageOptions(model=str(tiny_amused), guidance=3.0), CPU)
    cond = guided.encode_prompts(["a cat", "a dog"], negative_prompt="blurry")
    assert cond["negative_encoder_hidden_states"].shape == (2, 8, 32)
    tokens = torch.randint(17, (2, 16))
    base = {k: cond[k] for k in ("encoder_hidden_states", "pooled_text_emb", "micro_conds")}
    negative = {"encoder_hidden_states": cond["negative_encoder_hidden_states"],
                "pooled_text_emb": cond["negative_pooled_text_emb"], "micro_conds": cond["micro_conds"]}
    c, u = plain(tokens, **base), plain(tokens, **negative)
    assert torch.allclose(guided(tokens, **cond)[..., :16], (c + 3.0 * (c - u))[..., :16], atol=1e-5)
    with pytest.raises(ConfigError, match="negative"):
        guided(tokens, **base)


def test_decode_loop_and_images(tiny_amused, tmp_path):
    domain = ImageDomain()
    options = ImageOptions(model=str(tiny_amused), prompt="a cat", guidance=1.0)
    denoiser = domain.load_denoiser(options, CPU)
    initial = domain.initial_state(denoiser, options, 3, CPU)
    result = decode(denoiser, initial.state, MaskGIT(), chooser=TokenChooser(temperature=1.0),
                    conditioning=initial.conditioning, generator=torch.Generator().manual_seed(0))
    assert (result.tokens < 16).all() and result.nfe.tolist() == [16] * 3
    images = domain.decode(result.tokens, initial)
    assert images[0].size == (8, 8) and images[0].mode == "RGB"
    domain.save(images, tmp_path, initial)
    assert (tmp_path / "grid.png").is_file()
    assert set(domain.metrics(images, options, initial)) == {"pixel_diversity"}


def test_cli_run_on_an_amused_directory(tiny_amused, tmp_path, capsys):
    from mdsample.cli import main

    out = tmp_path / "run"
    code = main(["--domain", "image", "--sampler", "maskgit", "--model", str(tiny_amused), "--prompt", "a cat",
                 "-n", "2", "--steps", "4", "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text())["nfe_mean"] == 4
    assert json.loads((out / "samples.jsonl").read_text().splitlines()[0])["prompt"] == "a cat"


def test_incomplete_amused_directory_is_actionable(tiny_amused, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_amused, broken)
    shutil.rmtree(broken / "transformer")
    (broken / "transformer").mkdir()
    with pytest.raises(MissingFileError, match="aMUSEd checkpoint"):
        ImageDomain().load_denoiser(ImageOptions(model=str(broken)), CPU)


def test_amused_adapter_passes_the_conformance_kit(tiny_amused):
    from mdsample.testing import check_domain

    check_domain(ImageDomain(), ImageOptions(model=str(tiny_amused), prompt="a cat", guidance=1.0),
                 skip=["shipped_model"])
