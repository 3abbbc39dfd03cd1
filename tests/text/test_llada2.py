"""LLaDA2 (native MoE module): token parity with diffusers' LLaDA2Pipeline + BlockRefinementScheduler at temperature
0, with and without post-mask editing; every rule on it; the loader and the CLI on a tiny checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from mdsample.cli import main
from mdsample.core.blocks import decode_blocks
from mdsample.core.loop import Editing
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import load_text_model
from mdsample.plugins.text.adapters.llada2 import LLaDA2Blocks
from tests.text.block_models import forbid_token, llada2_tokenizer, tiny_llada2, tiny_llada2_dir
from tests.text.test_adapters_support import tiny_llada_dir

diffusers = pytest.importorskip("diffusers")
CPU = torch.device("cpu")
PROMPTS = torch.tensor([[8, 9, 10, 11, 12, 13], [14, 15, 16, 17, 18, 19]])


@pytest.fixture(scope="module")
def tiny():
    tok = llada2_tokenizer()
    model = tiny_llada2(len(tok), seed=1, sharpness=3.0)
    forbid_token(model, tok.mask_token_id)
    pipe = diffusers.LLaDA2Pipeline(model=model, scheduler=diffusers.BlockRefinementScheduler(), tokenizer=None)
    pipe.set_progress_bar_config(disable=True)
    return model, tok.mask_token_id, len(tok), pipe


def pipeline_tokens(pipe, mask_id, prompts, *, threshold, editing, gen_length=18, block=8, steps=8):
    return pipe(input_ids=prompts, use_chat_template=False, gen_length=gen_length, block_length=block,
                num_inference_steps=steps, temperature=0.0, threshold=threshold, editing_threshold=editing,
                max_post_steps=3, eos_early_stop=False, mask_token_id=mask_id, output_type="seq").sequences


def mdsample_tokens(model, mask_id, vocab, prompts, *, threshold, editing, rule=None, gen_length=18, block=8,
                    steps=8, floor="schedule"):
    edit = None if editing is None else Editing(editing, max_post_steps=3)
    blocks = LLaDA2Blocks(model, mask_id, vocab, canvas_length=block, editing=edit, context="full")
    rule = rule or BUILTIN_RULES["threshold"](threshold=threshold, floor=floor)
    return decode_blocks(blocks, prompts, rule, gen_length=gen_length, steps=steps, spread="block", editing=edit)


@pytest.mark.parametrize("threshold", [0.95, 0.6, 0.3])
def test_token_parity_with_the_diffusers_pipeline_without_editing(tiny, threshold):
    model, mask_id, vocab, pipe = tiny
    expected = pipeline_tokens(pipe, mask_id, PROMPTS, threshold=threshold, editing=None)
    got = mdsample_tokens(model, mask_id, vocab, PROMPTS, threshold=threshold, editing=None)
    assert torch.equal(got.generated(), expected)
    assert (got.generated() != mask_id).all()


@pytest.mark.parametrize(("threshold", "editing"), [(0.95, 0.5), (0.6, 0.3), (0.3, 0.7)])
def test_token_parity_with_the_diffusers_pipeline_with_post_mask_editing(tiny, threshold, editing):
    model, mask_id, vocab, pipe = tiny
    for row in range(2):  # diffusers decides when a block stops for the whole batch; mdsample per row
        prompt = PROMPTS[row : row + 1]
        expected = pipeline_tokens(pipe, mask_id, prompt, threshold=threshold, editing=editing)
        got = mdsample_tokens(model, mask_id, vocab, prompt, threshold=threshold, editing=editing)
        assert torch.equal(got.generated(), expected)
    plain = mdsample_tokens(model, mask_id, vocab, PROMPTS, threshold=threshold, editing=None)
    edited = mdsample_tokens(model, mask_id, vocab, PROMPTS, threshold=threshold, editing=editing)
    assert (edited.nfe >= plain.nfe).all()


def test_the_parity_checks_can_fail(tiny):
    """Editing and the threshold decide the tokens of this model, so equal tokens are not a coincidence."""
    model, mask_id, vocab, pipe = tiny
    plain = pipeline_tokens(pipe, mask_id, PROMPTS, threshold=0.6, editing=None)
    assert not torch.equal(plain, pipeline_tokens(pipe, mask_id, PROMPTS, threshold=0.6, editing=0.3))
    assert not torch.equal(plain, pipeline_tokens(pipe, mask_id, PROMPTS, threshold=0.3, editing=None))


@pytest.mark.parametrize("name", sorted(BUILTIN_RULES))
def test_every_rule_runs_on_llada2_with_and_without_editing(tiny, name):
    model, mask_id, vocab, _ = tiny
    for editing in (None, 0.5) if name in ("klass", "med", "eb") else (None,):
        result = mdsample_tokens(model, mask_id, vocab, PROMPTS, threshold=0.9, editing=editing,
                                 rule=BUILTIN_RULES[name]())
        assert result.tokens.shape == (2, 24) and (result.generated() != mask_id).all()
        assert torch.equal(result.tokens[:, :6], PROMPTS) and (result.commit_step >= 0).all()


@pytest.fixture(scope="module")
def llada2_dir(tmp_path_factory):
    return tiny_llada2_dir(tmp_path_factory.mktemp("llada2"))


def test_the_loader_reads_a_llada2_checkpoint_natively(llada2_dir):
    model = load_text_model(str(llada2_dir), trust_remote_code=False, device=CPU, editing=Editing(0.5))
    assert model.family == "llada2" and model.mask_id == model.tokenizer.mask_token_id
    assert isinstance(model.denoiser, LLaDA2Blocks) and model.denoiser.editing == Editing(0.5)
    assert model.tokenizer.eos_token_id in model.stop_ids
    with pytest.raises(ConfigError, match="domain.impl=native"):
        load_text_model(str(llada2_dir), trust_remote_code=True, device=CPU, impl="remote")


def test_editing_on_a_family_without_it_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="leave domain.editing_threshold unset"):
        load_text_model(str(tiny_llada_dir(tmp_path / "llada")), trust_remote_code=False, device=CPU,
                        editing=Editing(0.5))


def run_cli(*args: str) -> int:
    return main([*args, "--no-progress", "--device", "cpu"])


@pytest.mark.parametrize("sampler", ["klass"])
def test_cli_free_prompt_on_llada2(llada2_dir, tmp_path, sampler):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(llada2_dir), "--prompt", "the cat sat", "-n", "2",
                   "--sampler", sampler, "domain.gen_length=12", "domain.editing_threshold=0.6", "--out",
                   str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["prompt"] == "the cat sat" and r["nfe"] >= 1 for r in rows)
    assert run_cli("--domain", "text", "--model", str(llada2_dir), "--prompt", "the cat", "-n", "1", "--sampler",
                   sampler, "domain.gen_length=12", "--block-length", "4", "--out", str(tmp_path / "b4")) == 0


def test_cli_editing_on_a_family_without_it_exits_2(tmp_path, capsys):
    model_dir = tiny_llada_dir(tmp_path / "llada")
    capsys.readouterr()
    code = run_cli("--domain", "text", "--model", str(model_dir), "--prompt", "the cat",
                   "-n", "1", "domain.editing_threshold=0.5", "--out", str(tmp_path / "r"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "editing" in err[0]


def test_cli_checkpoint_of_unknown_architecture_exits_2(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba", "architectures": ["MambaForCausalLM"]}))
    code = run_cli("--domain", "text", "--model", str(tmp_path), "--prompt", "the cat", "-n", "1", "--out",
                   str(tmp_path / "r"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a text model mdsample can sample" in err[0]


def block_causal(length: int, block: int) -> torch.Tensor:
    blocks = torch.arange(length) // block
    return (blocks.unsqueeze(0) <= blocks.unsqueeze(1)).view(1, 1, length, length)


def test_the_cached_context_equals_block_causal_attention_over_the_whole_sequence(tiny):
    model, mask_id, vocab, _ = tiny
    blocks = LLaDA2Blocks(model, mask_id, vocab, canvas_length=4)
    sequence = torch.randint(0, mask_id, (2, 16))
    expected = model(sequence, attention_mask=block_causal(16, 4).expand(2, 1, 16, 16)).logits
    for start in (0, 4, 12):  # the context grows canvas by canvas, each read once into the cache
        canvas, conditioning = blocks.open(sequence[:, :start], torch.ones(2, start, dtype=torch.long),
                                           fresh=start == 0)
        got = canvas(sequence[:, start : start + 4], **conditioning)
        torch.testing.assert_close(got, expected[:, start : start + 4], atol=1e-4, rtol=1e-4)
    one_row = canvas(sequence[1:, 12:16], rows=torch.tensor([1]))
    torch.testing.assert_close(one_row, expected[1:, 12:16], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["klass", "med", "eb", "threshold"])
def test_rules_run_on_the_cached_context_with_padding(tiny, name):
    model, mask_id, vocab, _ = tiny
    prompts = torch.tensor([[0, 0, 8, 9, 10, 11], [14, 15, 16, 17, 18, 19]])
    result = decode_blocks(LLaDA2Blocks(model, mask_id, vocab, canvas_length=8), prompts, BUILTIN_RULES[name](),
                           attention_mask=(prompts != 0).long(), gen_length=18, steps=8, spread="block",
                           editing=Editing(0.5))
    assert (result.generated() != mask_id).all() and torch.equal(result.tokens[:, :6], prompts)
