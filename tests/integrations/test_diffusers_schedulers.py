"""mdsample rules as diffusers schedulers: diffusers' own LLaDA2Pipeline and DiffusionGemmaPipeline run on tiny models
with RuleScheduler in place of BlockRefinementScheduler."""

from __future__ import annotations

import inspect

import pytest
import torch

from mdsample.core.blocks import decode_blocks
from mdsample.core.rules import BUILTIN_RULES
from mdsample.plugins.text.adapters.diffusion_gemma import GemmaBlocks
from mdsample.plugins.text.adapters.llada2 import LLaDA2Blocks
from tests.text.block_models import forbid_token, gemma_tokenizer, llada2_tokenizer, tiny_gemma, tiny_llada2

diffusers = pytest.importorskip("diffusers")
from mdsample.integrations.diffusers import RuleScheduler  # noqa: E402  (needs diffusers)

PROMPT = torch.tensor([[8, 9, 10, 11, 12, 13]])
KLASS = {"conf_threshold": 0.3, "kl_threshold": 0.5}


@pytest.fixture(scope="module")
def llada2():
    tok = llada2_tokenizer()
    model = tiny_llada2(len(tok), seed=1, sharpness=3.0)
    forbid_token(model, tok.mask_token_id)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return model, tok.mask_token_id, len(tok), calls


def run_llada2(model, mask_id, scheduler, prompts=PROMPT, editing=None):
    pipe = diffusers.LLaDA2Pipeline(model=model, scheduler=scheduler, tokenizer=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe(input_ids=prompts, use_chat_template=False, gen_length=18, block_length=8, num_inference_steps=8,
                temperature=0.0, threshold=0.6, editing_threshold=editing, max_post_steps=3, eos_early_stop=False,
                mask_token_id=mask_id, output_type="seq").sequences


@pytest.mark.parametrize("editing", [None, 0.3])
def test_the_threshold_rule_as_a_scheduler_equals_block_refinement(llada2, editing):
    model, mask_id, _, _ = llada2
    prompts = torch.cat([PROMPT, PROMPT + 6])
    expected = run_llada2(model, mask_id, diffusers.BlockRefinementScheduler(), prompts, editing)
    ours = RuleScheduler(rule="threshold", rule_options={"threshold": 0.6, "floor": "schedule"})
    assert torch.equal(run_llada2(model, mask_id, ours, prompts, editing), expected)


def test_klass_keeps_its_kl_history_across_the_pipeline_steps(llada2):
    model, mask_id, vocab, calls = llada2
    calls.clear()
    tokens = run_llada2(model, mask_id, RuleScheduler(rule="klass", rule_options=KLASS))
    klass_calls = len(calls)
    calls.clear()
    run_llada2(model, mask_id, RuleScheduler(rule="confidence"))
    # KLASS commits every stable position at once: fewer steps than the schedule, which a KLASS that forgot its
    # history between calls (every KL against nothing, never stable) could not do
    assert klass_calls < len(calls)
    full = LLaDA2Blocks(model, mask_id, vocab, canvas_length=8, context="full")  # the context as the pipeline reads it
    own = decode_blocks(full, PROMPT, BUILTIN_RULES["klass"](**KLASS), gen_length=18, steps=8, spread="block")
    # the pipeline notices a finished block only after one more forward: one extra call for each of the 3 blocks
    assert torch.equal(tokens, own.generated()) and klass_calls == int(own.nfe) + 3


@pytest.mark.parametrize("name", sorted(BUILTIN_RULES))
def test_every_rule_runs_in_the_llada2_pipeline(llada2, name):
    model, mask_id, _, _ = llada2
    tokens = run_llada2(model, mask_id, RuleScheduler(rule=name), editing=0.5)
    assert tokens.shape == (1, 18) and (tokens != mask_id).all()


def test_the_scheduler_config_round_trips():
    scheduler = RuleScheduler(rule="med", rule_options={"entropy_threshold": 0.3}, block_length=16)
    again = RuleScheduler.from_config(scheduler.config)
    assert again.rule.config.entropy_threshold == 0.3 and again.config.block_length == 16


@pytest.fixture(scope="module")
def gemma():
    tok = gemma_tokenizer()
    return tiny_gemma(len(tok)), tok


def pipeline_speaks_this_transformers(model) -> bool:
    """diffusers 0.42.1's DiffusionGemmaPipeline passes the KV cache as ``past_key_values`` (transformers 5.23);
    transformers 5.24 renamed it ``cache``, which breaks the pipeline itself, whatever scheduler it gets."""
    params = inspect.signature(model.model.decoder.create_diffusion_decoder_attention_mask).parameters
    return "past_key_values" in params


@pytest.mark.parametrize(("name", "options"), [("eb", {}), ("klass", KLASS), ("med", {}), ("confidence", {})])
def test_rules_as_schedulers_in_the_diffusion_gemma_pipeline(gemma, name, options):
    model, tok = gemma
    if not pipeline_speaks_this_transformers(model):
        pytest.skip("diffusers' DiffusionGemmaPipeline (0.42.1) does not run on this transformers (cache keyword)")
    scheduler = RuleScheduler(rule=name, rule_options=options)
    pipe = diffusers.DiffusionGemmaPipeline(model=model, scheduler=scheduler, processor=tok)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt="the cat sat", gen_length=16, num_inference_steps=6, confidence_threshold=None,
               eos_early_stop=False, generator=torch.Generator().manual_seed(0), output_type="seq")
    prompt = tok.apply_chat_template([{"role": "user", "content": "the cat sat"}], add_generation_prompt=True,
                                     tokenize=True, return_tensors="pt", return_dict=True)["input_ids"]
    own = decode_blocks(GemmaBlocks(model), prompt, BUILTIN_RULES[name](**options), gen_length=16, steps=6,
                        spread="block", generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.sequences, own.generated())
