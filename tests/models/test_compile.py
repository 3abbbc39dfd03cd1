"""decode.compile: the config value, the modes, and a compiled native LLaDA decode that gives the eager tokens and
compiles once per shape (two graphs: the first block and the others, whatever the depth), never again across steps
or decodes (CPU inductor; CUDA with the captured step)."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch._dynamo.utils import counters

from mdsample.config import resolve_config
from mdsample.core import BlockSchedule, DecodeResult, MaskedState, decode
from mdsample.core.compile import use_compile
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError, UnknownChoiceError
from mdsample.models import lean
from mdsample.models.cached import CachedLean
from mdsample.models.lean import LeanConfig, LeanTransformer

VOCAB, MASK = 24, 23
needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("gcc") is None,
                                    reason="inductor on the CPU needs a C++ compiler")


def tiny_llada(seed: int = 0) -> CachedLean:
    """A 3-layer grouped-query native module with random weights, sharp enough to have clear argmaxes."""
    torch.manual_seed(seed)
    cfg = LeanConfig(vocab_size=VOCAB, hidden_size=32, num_layers=3, num_heads=4, num_kv_heads=2,
                     intermediate_size=64, rope_theta=10000.0, norm_eps=1e-6)
    model = LeanTransformer(cfg).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.4)
    return CachedLean(model, MASK)


def greedy(denoiser: CachedLean, device: str = "cpu", **kw) -> DecodeResult:
    """Two rows, prompt 3, eight tokens in two blocks of 4, one per step, argmax."""
    prompt = torch.randint(0, MASK, (2, 3), generator=torch.Generator().manual_seed(7))
    state = MaskedState.blank(2, 8, MASK, prompt=prompt, device=device)
    return decode(denoiser, state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(8, 4), **kw)


def graphs() -> int:
    return counters["stats"]["unique_graphs"]


@pytest.fixture
def fresh_dynamo():
    """Graphs compiled by an earlier test are shared by every module of the same shape: start from none."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_the_config_takes_compile_modes_and_names_the_choices_of_a_bad_one(toy_plugins):
    assert resolve_config("toy", "confidence").decode.compile == "off"
    assert resolve_config("toy", "confidence", dotlist=["decode.compile=off"]).decode.compile == "off"
    assert resolve_config("toy", "confidence", dotlist=["decode.compile=on"]).decode.compile == "on"  # YAML: True
    with pytest.raises(UnknownChoiceError) as error:
        resolve_config("toy", "confidence", dotlist=["decode.compile=sometimes"])
    assert str(error.value) == "unknown decode.compile 'sometimes'; choose one of: auto, off, on"


def test_a_run_passes_compile_to_its_denoiser(toy_plugins):
    """The toy domain's denoiser is not compilable: auto decodes eagerly, on stops the run with a ConfigError."""
    from mdsample import sample

    assert sample("toy", "confidence", 2, device="cpu", progress=False, decode={"compile": "auto"}) is not None
    with pytest.raises(ConfigError, match="does not declare itself compilable"):
        sample("toy", "confidence", 2, device="cpu", progress=False, decode={"compile": "on"})


def test_modes_switch_a_compilable_denoiser_and_refuse_others():
    denoiser = tiny_llada()
    cpu = torch.device("cpu")
    assert not use_compile(denoiser, "auto", cpu) and not denoiser.model.compiled  # auto: CUDA only
    assert use_compile(denoiser, "on", cpu) and denoiser.model.compiled
    assert not use_compile(denoiser, "off", cpu) and not denoiser.model.compiled
    assert use_compile(denoiser, "auto", torch.device("cuda")) and denoiser.model.compiled
    with pytest.raises(ConfigError, match="decode.compile='yes' is unknown; choose one of: auto, on, off"):
        use_compile(denoiser, "yes", cpu)
    plain = lambda tokens: tokens  # noqa: E731
    assert not use_compile(plain, "auto", torch.device("cuda"))
    with pytest.raises(ConfigError, match="does not declare itself compilable"):
        use_compile(plain, "on", cpu)


@needs_compiler
@pytest.mark.usefixtures("fresh_dynamo")
def test_a_compiled_decode_gives_the_eager_tokens_and_never_recompiles_after_warm_up():
    """Static shapes (capture=on pads to batch buckets; here one bucket): two graphs for the whole decode (the first
    block, the two others), none for a second decode, and at temperature 0 the same tokens as the eager module."""
    denoiser = tiny_llada()
    use_compile(denoiser, "off", torch.device("cpu"))
    eager = greedy(denoiser, capture="on").tokens
    use_compile(denoiser, "on", torch.device("cpu"))
    before = graphs()
    compiled = greedy(denoiser, capture="on").tokens
    assert graphs() - before == 2  # 8 steps, one shape
    assert greedy(denoiser, capture="on").tokens.equal(compiled) and graphs() - before == 2
    assert compiled.equal(eager)


@needs_compiler
@pytest.mark.usefixtures("fresh_dynamo")
def test_a_compiled_dual_cache_decode_gives_the_eager_tokens_with_one_graph_per_call_kind():
    """The cached calls (prefill over the canvas, the window against the cache in place) compile once each."""
    denoiser = tiny_llada(seed=1)
    eager = greedy(denoiser, capture="on", cache="dual").tokens
    use_compile(denoiser, "on", torch.device("cpu"))
    before = graphs()
    compiled = greedy(denoiser, capture="on", cache="dual").tokens
    assert graphs() - before == 4  # the prefill, the window against the cache; two graphs each
    assert greedy(denoiser, capture="on", cache="dual").tokens.equal(compiled) and graphs() - before == 4
    assert compiled.equal(eager)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.usefixtures("fresh_dynamo")
def test_on_cuda_the_captured_step_replays_the_compiled_forward():
    """compile=auto on CUDA compiles; capture=auto then captures the compiled kernels: same tokens as eager, graphs
    captured, and no compilation in a second decode."""
    denoiser = tiny_llada(seed=2)
    denoiser.model.cuda()
    use_compile(denoiser, "off", torch.device("cuda"))
    eager = greedy(denoiser, device="cuda", cache="dual").tokens
    assert use_compile(denoiser, "auto", torch.device("cuda"))
    before = graphs()
    compiled = greedy(denoiser, device="cuda", cache="dual")
    assert graphs() - before == 4 and compiled.graphs > 0
    again = greedy(denoiser, device="cuda", cache="dual")
    assert graphs() - before == 4 and again.graphs > 0
    assert compiled.tokens.equal(eager) and again.tokens.equal(compiled.tokens)


def test_a_failed_compilation_warns_and_runs_eagerly(monkeypatch):
    denoiser = tiny_llada()
    tokens = torch.randint(0, MASK, (1, 6), generator=torch.Generator().manual_seed(3))
    expected = denoiser(tokens)

    def fails(*args):
        raise torch._dynamo.exc.Unsupported("an op the compiler does not take")

    monkeypatch.setattr(lean, "compiled_block", lambda: fails)
    denoiser.use_compiled(True)
    with pytest.warns(RuntimeWarning, match="torch.compile failed, running the module eagerly: an op the compiler"):
        assert torch.equal(denoiser(tokens), expected)
    assert not denoiser.model.compiled
