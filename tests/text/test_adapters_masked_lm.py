"""Masked LMs (BERT / RoBERTa / ModernBERT) as text denoisers: loading, logits, left padding that changes nothing."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
)

from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import build_canvas, load_text_model
from tests.text.test_adapters_support import bert_tokenizer

SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CONFIGS = {
    "bert": (BertForMaskedLM, BertConfig(max_position_embeddings=64, **SHAPE)),
    "roberta": (RobertaForMaskedLM, RobertaConfig(max_position_embeddings=66, pad_token_id=0, **SHAPE)),
    "modernbert": (ModernBertForMaskedLM, ModernBertConfig(max_position_embeddings=64, pad_token_id=0,
                                                           layer_types=["full_attention"] * 2, **SHAPE)),
}


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def mlm(request, tmp_path_factory):
    cls, config = CONFIGS[request.param]
    tokenizer = bert_tokenizer()
    config.vocab_size = len(tokenizer)
    model_dir = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    model = cls(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.3)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return load_text_model(str(model_dir), trust_remote_code=False, device=torch.device("cpu"))


def test_loads_with_the_tokenizers_special_ids(mlm):
    assert mlm.family == "masked_lm"
    assert (mlm.mask_id, mlm.pad_id, mlm.prefix_ids) == (4, 0, (2,))
    assert 3 in mlm.stop_ids and mlm.denoiser.mask_id == 4 and mlm.max_length is not None


def test_logits_cover_the_canvas_and_vocabulary(mlm):
    canvas = build_canvas(*mlm.encode_prompts(["the cat sat"], chat=False), 6, mlm.mask_id)
    logits = mlm.denoiser(canvas.tokens, **canvas.conditioning())
    assert logits.shape == (1, 10, len(mlm.tokenizer)) and torch.isfinite(logits).all()


def test_left_padding_leaves_the_real_tokens_logits_unchanged(mlm):
    short = "a dog"
    ids, mask = mlm.encode_prompts([short, "the big red cat sat on the mat"], chat=False)
    padded = build_canvas(ids, mask, 6, mlm.mask_id)
    alone = build_canvas(*mlm.encode_prompts([short], chat=False), 6, mlm.mask_id)
    assert padded.conditioning()
    width = alone.tokens.shape[1]
    together = mlm.denoiser(padded.tokens, **padded.conditioning())[0, -width:]
    torch.testing.assert_close(together, mlm.denoiser(alone.tokens)[0], atol=1e-4, rtol=1e-4)


def test_a_canvas_longer_than_the_positions_is_an_error(mlm):
    canvas = build_canvas(*mlm.encode_prompts(["the cat"], chat=False), 80, mlm.mask_id)
    with pytest.raises(ConfigError, match="exceeds this model's"):
        mlm.denoiser(canvas.tokens)
