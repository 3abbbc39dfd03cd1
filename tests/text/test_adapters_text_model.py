"""TextModel and canvases: left-padded prompts, chat templates, stop ids, and a full decode through the core loop."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from mdsample.core.loop import decode
from mdsample.core.rules import BUILTIN_RULES
from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import TextModel, build_canvas, load_text_model
from tests.text.test_adapters_support import bert_tokenizer, tiny_llada_dir

CLS, SEP, MASK, PAD = 2, 3, 4, 0


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> TextModel:
    model_dir = tmp_path_factory.mktemp("bert")
    tokenizer = bert_tokenizer()
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=64)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return load_text_model(str(model_dir), trust_remote_code=False, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def llada(tmp_path_factory) -> TextModel:
    return load_text_model(str(tiny_llada_dir(tmp_path_factory.mktemp("llada"))), trust_remote_code=False,
                           device=torch.device("cpu"))


def ids_of(model: TextModel, text: str) -> list[int]:
    return model.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_prompts_are_left_padded_with_cls_and_no_sep(bert):
    ids, mask = bert.encode_prompts(["the cat sat", "a dog"], chat=False)
    assert ids.tolist() == [[CLS, *ids_of(bert, "the cat sat")], [PAD, CLS, *ids_of(bert, "a dog")]]
    assert mask.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    assert SEP not in ids.tolist()[0]


def test_canvas_appends_masked_slots_and_spans_the_whole_canvas(bert):
    ids, mask = bert.encode_prompts(["the cat sat", "a dog"], chat=False)
    canvas = build_canvas(ids, mask, 5, bert.mask_id)
    tokens, attention_mask, gen_start = canvas
    assert gen_start == 4 and tokens.shape == attention_mask.shape == (2, 9)
    assert (tokens[:, 4:] == MASK).all() and (attention_mask[:, 4:] == 1).all()
    assert torch.equal(tokens[:, :4], ids) and torch.equal(attention_mask[:, :4], mask)
    assert torch.equal(canvas.conditioning()["attention_mask"], attention_mask)
    unpadded = build_canvas(*bert.encode_prompts(["the cat", "a dog"], chat=False), 5, bert.mask_id)
    assert unpadded.conditioning() == {}


def test_canvas_rejects_bad_shapes(bert):
    ids, mask = bert.encode_prompts(["the cat"], chat=False)
    with pytest.raises(ConfigError, match="gen_length"):
        build_canvas(ids, mask, 0, bert.mask_id)
    with pytest.raises(ConfigError, match="must both be"):
        build_canvas(ids, mask[:, :1], 3, bert.mask_id)


def test_completion_is_cut_at_the_first_stop_id(bert):
    the, cat, dog = ids_of(bert, "the cat dog")
    assert bert.decode_completion(torch.tensor([the, MASK, cat, SEP, dog])) == "the cat"
    assert bert.decode_completion(torch.tensor([the, cat, dog])) == "the cat dog"
    assert bert.decode_completion(torch.tensor([SEP, dog])) == ""


def test_chat_prompts_use_the_template_and_end_of_turn_stops(llada):
    ids, mask = llada.encode_prompts(["the cat", "a big red dog"], chat=True)
    vocab = llada.tokenizer.get_vocab()
    header = [vocab["<|start_header_id|>"], vocab["assistant"], vocab["<|end_header_id|>"]]
    assert ids[:, -3:].tolist() == [header, header]
    assert ids[1, 0] == vocab["<|startoftext|>"] and mask[1].all() and not mask[0].all()
    assert set(llada.stop_ids) == {vocab["<|endoftext|>"], vocab["<|eot_id|>"]}
    red = ids_of(llada, "big red")
    assert llada.decode_completion(torch.tensor([*red, vocab["<|eot_id|>"], *red])) == "big red"


def test_chat_without_a_template_is_an_error(bert):
    with pytest.raises(ConfigError, match="no chat template"):
        bert.encode_prompts(["the cat"], chat=True)
    with pytest.raises(ConfigError, match="no prompts"):
        bert.encode_prompts([], chat=False)


def test_pad_equal_to_mask_is_rejected(bert):
    with pytest.raises(ConfigError, match="pad id equals the mask id"):
        TextModel(bert.denoiser, bert.tokenizer, mask_id=MASK, pad_id=MASK, stop_ids=(SEP,))


@pytest.mark.parametrize("rule", ["threshold", "klass"])
def test_a_padded_batch_decodes_through_the_loop(llada, rule):
    ids, mask = llada.encode_prompts(["the cat", "a big red dog on the mat"], chat=True)
    canvas = build_canvas(ids, mask, 8, llada.mask_id)
    state = MaskedState(canvas.tokens.clone(), llada.mask_id, canvas.gen_start)
    result = decode(llada.denoiser, state, BUILTIN_RULES[rule](), conditioning=canvas.conditioning())
    assert not (result.tokens == llada.mask_id).any()
    assert torch.equal(result.tokens[:, : canvas.gen_start], ids)
    assert all(isinstance(llada.decode_completion(row), str) for row in result.tokens[:, canvas.gen_start :])
