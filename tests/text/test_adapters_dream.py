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


def decode_canvas(model, prompts, gen, cache="none", refresh=0, rule="confidence"):
    """Greedy decoding (confidence by default) of ``gen`` slots after ``prompts`` (left-padded), blocks of 4, in
    float64."""
    from mdsample.core import BlockSchedule, MaskedState, decode
    from mdsample.core.rules import BUILTIN_RULES

    canvas = build_canvas(*model.encode_prompts(prompts, chat=False), gen, model.mask_id)
    state = MaskedState(canvas.tokens.clone(), model.mask_id, gen_start=canvas.gen_start)
    options = {"conf_threshold": 0.3, "kl_threshold": 0.5} if rule == "klass" else {}
    return decode(model.denoiser, state, BUILTIN_RULES[rule](**options), schedule=BlockSchedule(gen, 4),
                  conditioning=canvas.conditioning(), stats_dtype=torch.float64, cache=cache, cache_refresh=refresh)


@pytest.fixture(scope="module")
def native64(dream_dir):
    model = load_text_model(str(dream_dir), trust_remote_code=False, device=CPU)
    model.denoiser.model.double()
    return model


def test_native_dream_cached_queries_after_prefill_reproduce_the_full_forward(native64):
    """Right after the prefill every stored key is fresh, so a cached call over any columns (a window, a read-only
    query, the first column) gives the full forward's shifted logits, padded rows included (Dream's positions)."""
    den = native64.denoiser
    canvas = canvas_of(native64, PROMPTS)
    tokens, mask = canvas.tokens, canvas.attention_mask
    b, length = tokens.shape
    cache = den.new_cache(b, length, CPU)
    full = den.prefill(tokens, cache, torch.arange(b), attention_mask=mask)
    torch.testing.assert_close(full, den(tokens, attention_mask=mask))
    picked = torch.tensor([[0, 1, length - 1], [2, 3, 9]])  # column 0 keeps its own output, the others shift
    narrow = den.prefill(tokens, cache, torch.arange(b), attention_mask=mask, columns=picked)
    torch.testing.assert_close(narrow, full[torch.arange(b).unsqueeze(1), picked], rtol=1e-12, atol=1e-12)
    columns = torch.tensor([[0, 3, 4, 5, length - 1], [2, 6, 7, 8, length - 1]])
    slots = columns.clone()
    slots[:, -1] = length  # read-only
    got = den.cached(tokens.gather(1, columns), columns, slots, cache, 5, attention_mask=mask)
    expected = full[torch.arange(b).unsqueeze(1), columns]
    real = mask.bool().gather(1, (columns - 1).clamp_min(0)) & mask.bool().gather(1, columns)
    torch.testing.assert_close(got[real], expected[real], rtol=1e-10, atol=1e-10)


def test_native_dream_peek_reads_any_rows_and_stores_nothing(native64):
    """Right after the prefill a peek (read-only queries of any cache rows, their left neighbours from the stored
    tokens) gives the full forward's shifted logits and leaves the cache, token row included, as it was."""
    den = native64.denoiser
    canvas = canvas_of(native64, PROMPTS)
    tokens, mask = canvas.tokens, canvas.attention_mask
    b, length = tokens.shape
    cache = den.new_cache(b + 1, length, CPU)
    full = den.prefill(tokens, cache, torch.arange(b), attention_mask=mask)
    stored = [t.clone() for t in cache.tensors]
    rows = torch.arange(b).flip(0)
    columns = torch.stack([torch.arange(length - 4, length), torch.arange(length - 6, length - 2)])
    got = den.peek(tokens[rows].gather(1, columns), columns, cache, rows, attention_mask=mask[rows])
    torch.testing.assert_close(got, full[rows.unsqueeze(1), columns], rtol=1e-10, atol=1e-10)
    assert all(torch.equal(a, s) for a, s in zip(stored, cache.tensors, strict=True))


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_native_dream_decodes_with_a_kv_cache(native64, mode):
    """With a refresh every step the cached loop gives exactly the uncached loop's tokens; with refreshes at block
    boundaries alone a left-padded batch gives each row its own result."""
    plain = decode_canvas(native64, PROMPTS, 8)
    every = decode_canvas(native64, PROMPTS, 8, cache=mode, refresh=1)
    assert torch.equal(every.tokens, plain.tokens)
    batched = decode_canvas(native64, PROMPTS, 8, cache=mode)
    for i, prompt in enumerate(PROMPTS):
        alone = decode_canvas(native64, [prompt], 8, cache=mode)
        width = alone.tokens.shape[1]
        assert torch.equal(batched.tokens[i, -width:], alone.tokens[0])


def test_native_dream_klass_peeks_under_the_dual_cache(native64):
    """KLASS under the dual cache (one-block cached steps, a peek per row at its block advance): a left-padded batch
    gives each row its own tokens and NFE."""
    batched = decode_canvas(native64, PROMPTS, 8, cache="dual", rule="klass")
    for i, prompt in enumerate(PROMPTS):
        alone = decode_canvas(native64, [prompt], 8, cache="dual", rule="klass")
        width = alone.tokens.shape[1]
        assert torch.equal(batched.tokens[i, -width:], alone.tokens[0]) and int(batched.nfe[i]) == int(alone.nfe[0])
