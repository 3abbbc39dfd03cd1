"""DiffusionGemma through transformers' own classes: mdsample's ``eb`` rule reproduces ``generate`` token for token
(same seed: same random draws), every rule runs on it (its sampler and commit-once), the loader and the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from mdsample.cli import main
from mdsample.core import MaskedState, decode
from mdsample.core.blocks import decode_blocks
from mdsample.core.infill import EarlyExit
from mdsample.core.reselect import Reselect
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import load_text_model
from mdsample.plugins.text.adapters.diffusion_gemma import GemmaBlocks
from tests.text.block_models import gemma_tokenizer, tiny_gemma, tiny_gemma_dir

CPU = torch.device("cpu")
PROMPT = torch.tensor([[2, 8, 9, 10, 11]])
STEPS = 6


@pytest.fixture(scope="module")
def model():
    return tiny_gemma(len(gemma_tokenizer()))


def generate(model, prompt, seed, *, gamma, confidence, attention_mask=None, t_max=0.8, stability=1):
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    extra = {} if attention_mask is None else {"attention_mask": attention_mask}
    torch.manual_seed(seed)
    return model.generate(prompt, max_new_tokens=16, max_denoising_steps=STEPS, t_min=0.4, t_max=t_max,
                          sampler_config=EntropyBoundSamplerConfig(entropy_bound=gamma), stability_threshold=stability,
                          confidence_threshold=confidence, eos_token_id=None, pad_token_id=None, **extra)


def mdsample(model, prompt, seed, *, gamma, confidence, attention_mask=None, t_max=0.8, stability=1, rule=None,
             gen_length=16):
    torch.manual_seed(seed)  # generate draws from the global generator; so does mdsample with generator=None
    return decode_blocks(GemmaBlocks(model), prompt, rule or BUILTIN_RULES["eb"](gamma=gamma), gen_length=gen_length,
                         steps=STEPS, attention_mask=attention_mask,
                         reselect=Reselect(t_max=t_max, t_min=0.4, stability=stability, confidence=confidence))


@pytest.mark.parametrize(("gamma", "stability", "confidence"), [(0.1, 1, 0.005), (1.0, 0, 0.2), (0.5, 2, 0.4)])
def test_eb_reproduces_generate_token_for_token(model, gamma, stability, confidence):
    steps = []
    for seed in range(2):
        expected = generate(model, PROMPT, seed, gamma=gamma, confidence=confidence, stability=stability).sequences
        got = mdsample(model, PROMPT, seed, gamma=gamma, confidence=confidence, stability=stability)
        assert torch.equal(got.tokens, expected)
        steps.append(int(got.nfe))
    if stability == 0:
        assert min(steps) < 2 * STEPS, "the adaptive stop should end some canvas before its last step"


def test_eb_reproduces_generate_on_a_left_padded_batch(model):
    prompts = torch.tensor([[0, 0, 2, 8, 9], [2, 12, 13, 14, 15]])
    mask = (prompts != 0).long()
    expected = generate(model, prompts, 4, gamma=0.5, confidence=0.3, stability=0, attention_mask=mask).sequences
    got = mdsample(model, prompts, 4, gamma=0.5, confidence=0.3, stability=0, attention_mask=mask)
    assert torch.equal(got.tokens, expected)


def test_the_parity_check_can_fail(model):
    """Settings that change the sampler change the tokens: agreement above is not a property of any two runs."""
    expected = generate(model, PROMPT, 0, gamma=0.1, confidence=0.005).sequences
    assert not torch.equal(mdsample(model, PROMPT, 0, gamma=0.1, confidence=0.005, t_max=2.0).tokens, expected)
    assert not torch.equal(mdsample(model, PROMPT, 0, gamma=5.0, confidence=0.005).tokens, expected)


@pytest.mark.parametrize("name", sorted(BUILTIN_RULES))
def test_every_rule_runs_on_diffusion_gemma_both_ways(model, name):
    vocab = model.config.text_config.vocab_size
    reselected = mdsample(model, PROMPT, 0, gamma=0.1, confidence=0.005, rule=BUILTIN_RULES[name](), gen_length=8)
    once = decode_blocks(GemmaBlocks(model), PROMPT, BUILTIN_RULES[name](), gen_length=8, steps=STEPS,
                         generator=torch.Generator().manual_seed(1))
    for result in (reselected, once):
        assert result.tokens.shape == (1, 13) and torch.equal(result.tokens[:, :5], PROMPT)
        assert ((result.generated() >= 0) & (result.generated() < vocab)).all()
    assert (once.commit_step >= 0).all() and int(once.nfe) <= 8  # adaptive rules may take one slot per step


def test_commit_once_keeps_what_it_committed(model):
    """Under commit-once decoding (diffusers' uniform mode) the canvas ends exactly as its commits left it."""
    blocks = GemmaBlocks(model)
    denoiser, conditioning = blocks.open(PROMPT, torch.ones_like(PROMPT), fresh=True)
    g = torch.Generator().manual_seed(0)
    state = MaskedState.blank(1, 8, -1, corruption="uniform", vocab_size=blocks.vocab_size, generator=g)
    seen = []

    class Spy:
        self_conditioning, mask_id, vocab_size = True, -1, blocks.vocab_size

        def __call__(self, tokens, **cond):
            seen.append(tokens.clone())
            return denoiser(tokens, **cond)

    decode(Spy(), state, BUILTIN_RULES["klass"](), conditioning=conditioning, generator=g)
    assert not state.masked.any()
    last = seen[-1]
    kept = state.commit_step < len(seen) - 1
    assert torch.equal(last[kept], state.tokens[kept])


def test_early_exit_on_diffusion_gemma_is_a_config_error(model):
    tokens = torch.cat([PROMPT, torch.full((1, 8), -1)], dim=1)
    state = MaskedState(tokens, -1, gen_start=5)
    with pytest.raises(ConfigError, match="no mask token"):
        decode(GemmaBlocks(model), state, BUILTIN_RULES["eb"](), early_exit=EarlyExit(0.1, torch.tensor([[12, 13]])))


@pytest.fixture(scope="module")
def gemma_dir(tmp_path_factory):
    return tiny_gemma_dir(tmp_path_factory.mktemp("gemma"))


def test_the_loader_reads_a_diffusion_gemma_checkpoint(gemma_dir):
    loaded = load_text_model(str(gemma_dir), trust_remote_code=False, device=CPU)
    assert loaded.family == "diffusion_gemma" and loaded.mask_id == -1
    assert isinstance(loaded.denoiser, GemmaBlocks) and loaded.denoiser.reselect == Reselect()
    assert loaded.denoiser.default_steps == 48  # transformers' default max_denoising_steps
    assert loaded.tokenizer.convert_tokens_to_ids("<end_of_turn>") in loaded.stop_ids


def run_cli(*args: str) -> int:
    return main([*args, "--no-progress", "--device", "cpu"])


@pytest.mark.parametrize("sampler", ["klass"])
def test_cli_free_prompt_on_diffusion_gemma(gemma_dir, tmp_path, sampler):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(gemma_dir), "--prompt", "the cat sat", "-n", "2",
                   "--sampler", sampler, "domain.gen_length=12", "--steps", "8", "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["prompt"] == "the cat sat" and 1 <= r["nfe"] <= 8 for r in rows)


def test_cli_reasoning_task_on_diffusion_gemma(gemma_dir, tmp_path):
    out = tmp_path / "run"
    assert run_cli("--domain", "text", "--model", str(gemma_dir), "--task", "arithmetic", "-n", "2",
                   "--sampler", "klass", "domain.reasoning_length=6", "domain.answer_length=2", "--steps", "6",
                   "--out", str(out)) == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(r["gold"] and isinstance(r["correct"], bool) for r in rows)


def test_cli_editing_or_early_exit_on_diffusion_gemma_exit_2(gemma_dir, tmp_path, capsys):
    for flags in (["--prompt", "the cat", "domain.editing_threshold=0.5"],
                  ["--task", "arithmetic", "--early-exit", "0.5"]):
        capsys.readouterr()
        code = run_cli("--domain", "text", "--model", str(gemma_dir), "-n", "1", *flags, "--out",
                       str(tmp_path / "r"))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
