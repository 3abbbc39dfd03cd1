"""LLaDA checkpoints: remote code only when allowed, the native module equal to it, padding, mask id, failures."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mdsample.errors import ConfigError
from mdsample.models.llada import MASK_ID
from mdsample.plugins.text.adapters import build_canvas, load_text_model
from tests.text.test_adapters_support import tiny_llada_dir

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return tiny_llada_dir(tmp_path_factory.mktemp("llada"))


@pytest.fixture(scope="module")
def native(llada_dir):
    return load_text_model(str(llada_dir), trust_remote_code=False, device=CPU)


@pytest.fixture(scope="module")
def remote(llada_dir):
    return load_text_model(str(llada_dir), trust_remote_code=True, device=CPU, impl="remote")


def padded_canvas(model):
    ids, mask = model.encode_prompts(["the cat", "a big red dog sat on the mat"], chat=True)
    return build_canvas(ids, mask, 6, model.mask_id)


def test_remote_code_runs_only_when_allowed(llada_dir):
    with pytest.raises(ConfigError, match=r"domain.trust_remote_code=true, or use domain.impl=native"):
        load_text_model(str(llada_dir), trust_remote_code=False, device=CPU, impl="remote")


def test_native_module_equals_the_remote_code(native, remote):
    assert type(remote.denoiser.model).__name__ == "LLaDAModelLM"
    assert type(native.denoiser.model).__name__ == "LeanTransformer"
    canvas = padded_canvas(native)
    real = canvas.attention_mask.bool()
    expected = remote.denoiser(canvas.tokens, **canvas.conditioning())
    got = native.denoiser(canvas.tokens, **canvas.conditioning())
    assert got.shape == (2, canvas.tokens.shape[1], len(native.tokenizer))
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(native.denoiser(canvas.tokens), remote.denoiser(canvas.tokens), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", ["native", "remote"])
def test_left_padding_leaves_the_real_tokens_logits_unchanged(native, remote, impl):
    model = native if impl == "native" else remote
    canvas = padded_canvas(model)
    alone = build_canvas(*model.encode_prompts(["the cat"], chat=True), 6, model.mask_id)
    width = alone.tokens.shape[1]
    together = model.denoiser(canvas.tokens, **canvas.conditioning())[0, -width:]
    torch.testing.assert_close(together, model.denoiser(alone.tokens)[0], atol=1e-4, rtol=1e-4)


def test_special_ids(native):
    vocab = native.tokenizer.get_vocab()
    assert native.family == "llada" and native.mask_id == native.denoiser.mask_id == vocab["<|mdm_mask|>"]
    assert native.pad_id == vocab["<|endoftext|>"]
    assert set(native.stop_ids) == {vocab["<|endoftext|>"], vocab["<|eot_id|>"]}


def test_the_mask_id_defaults_to_llada_s(tmp_path):
    model = load_text_model(str(tiny_llada_dir(tmp_path / "m", mask_token_id=None)), trust_remote_code=False,
                            device=CPU)
    assert model.mask_id == model.denoiser.mask_id == MASK_ID == 126336


def test_an_unsupported_variant_points_at_remote_code(llada_dir, tmp_path):
    variant = shutil.copytree(llada_dir, tmp_path / "variant")
    config = json.loads((variant / "config.json").read_text())
    (variant / "config.json").write_text(json.dumps({**config, "block_type": "sequential"}))
    with pytest.raises(ConfigError, match="domain.impl=remote"):
        load_text_model(str(variant), trust_remote_code=False, device=CPU)


def test_remote_code_that_breaks_is_a_config_error(llada_dir, tmp_path):
    broken = shutil.copytree(llada_dir, tmp_path / "broken")
    with open(broken / "modeling_llada.py", "a") as f:
        f.write("\nraise RuntimeError('this code needs another transformers')\n")
    with pytest.raises(ConfigError, match="fails under transformers .*RuntimeError.*use domain.impl=native"):
        load_text_model(str(broken), trust_remote_code=True, device=CPU, impl="remote")


@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_native_llada_serves_the_loops_kv_cache(native, cache):
    from mdsample.core.loop import decode
    from mdsample.core.rules import BUILTIN_RULES
    from mdsample.core.schedule import BlockSchedule
    from mdsample.core.state import MaskedState

    canvas = padded_canvas(native)
    results = []
    for mode, refresh in (("none", 0), (cache, 1), (cache, 0)):
        state = MaskedState(canvas.tokens.clone(), native.mask_id, canvas.gen_start)
        results.append(decode(native.denoiser, state, BUILTIN_RULES["confidence"](), conditioning=canvas.conditioning(),
                              schedule=BlockSchedule(block_length=3), cache=mode, cache_refresh=refresh))
    exact, refreshed, cached = results
    assert torch.equal(exact.tokens, refreshed.tokens)  # refreshing every step, a cached decode is the exact one
    assert not (cached.tokens == native.mask_id).any() and torch.equal(cached.nfe, exact.nfe)
    assert torch.equal(cached.tokens[:, : canvas.gen_start], canvas.tokens[:, : canvas.gen_start])
