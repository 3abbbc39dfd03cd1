"""Dream checkpoints: the logit shift, padding with Dream's positions, native == remote code, its tokenizer files."""

from __future__ import annotations

import pytest
import torch

from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import build_canvas, load_text_model
from tests.text.test_adapters_support import tiny_dream_dir

CPU = torch.device("cpu")
PROMPTS = [" the cat", " the cat the cat the"]


@pytest.fixture(scope="module")
def dream_dir(tmp_path_factory):
    return tiny_dream_dir(tmp_path_factory.mktemp("dream"))


@pytest.fixture(scope="module")
def native(dream_dir):
    return load_text_model(str(dream_dir), trust_remote_code=False, device=CPU)


@pytest.fixture(scope="module")
def remote(dream_dir):
    return load_text_model(str(dream_dir), trust_remote_code=True, device=CPU, impl="remote")


def canvas_of(model, prompts, chat=False):
    return build_canvas(*model.encode_prompts(prompts, chat=chat), 5, model.mask_id)


def test_remote_code_runs_only_when_allowed(dream_dir):
    with pytest.raises(ConfigError, match="domain.trust_remote_code=true"):
        load_text_model(str(dream_dir), trust_remote_code=False, device=CPU, impl="remote")


def test_logits_are_shifted_back_to_their_positions(remote):
    tokens = canvas_of(remote, PROMPTS[:1]).tokens
    raw = remote.denoiser.model(tokens, "full", None).logits
    shifted = remote.denoiser(tokens)
    torch.testing.assert_close(shifted[:, 1:], raw[:, :-1])
    torch.testing.assert_close(shifted[:, 0], raw[:, 0])


def test_native_module_equals_the_remote_code(native, remote):
    assert type(native.denoiser.model).__name__ == "LeanTransformer"
    canvas = canvas_of(native, PROMPTS)
    real = canvas.attention_mask.bool()
    got = native.denoiser(canvas.tokens, **canvas.conditioning())
    expected = remote.denoiser(canvas.tokens, **canvas.conditioning())
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(native.denoiser(canvas.tokens), remote.denoiser(canvas.tokens), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl", ["native", "remote"])
def test_left_padding_leaves_the_real_tokens_logits_unchanged(native, remote, impl):
    model = native if impl == "native" else remote
    padded = canvas_of(model, PROMPTS)
    assert padded.conditioning()
    alone = canvas_of(model, PROMPTS[:1])
    width = alone.tokens.shape[1] - 1  # a row's first token reads the output before it (padding): it is prompt anyway
    together = model.denoiser(padded.tokens, **padded.conditioning())[0, -width:]
    torch.testing.assert_close(together, model.denoiser(alone.tokens)[0, -width:], atol=1e-4, rtol=1e-4)


def test_native_reads_dreams_tokenizer_files_without_remote_code(native, remote):
    assert type(remote.tokenizer).__name__ == "DreamTokenizer"
    assert type(native.tokenizer).__name__ == "Qwen2Tokenizer"
    for chat in (False, True):
        torch.testing.assert_close(native.encode_prompts(PROMPTS, chat=chat), remote.encode_prompts(PROMPTS, chat=chat))
    vocab = native.tokenizer.get_vocab()
    assert native.mask_id == vocab["<|mask|>"] and native.pad_id == vocab["<|endoftext|>"]
    assert set(native.stop_ids) == {vocab["<|endoftext|>"], vocab["<|im_end|>"]}
    ids, _ = native.encode_prompts(PROMPTS[:1], chat=True)
    assert native.tokenizer.decode(ids[0]).endswith("<|im_start|>assistant\n")
