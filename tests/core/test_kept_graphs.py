"""Graphs and KV cache kept from one decode to the next (core/capture.py KeptGraphs): the same tokens as fresh
decodes, storage reused only for a decode of the same kind, nothing kept where the key cannot name what the calls
read."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.capture import KeptGraphs, memory_of
from mdsample.core.infill import EarlyExit
from mdsample.core.loop import _graph_key
from mdsample.core.rules import BUILTIN_RULES
from tests.core.test_cache import (
    GEN,
    MASK,
    RULES,
    UNEVEN,
    one_thread,  # noqa: F401  (autouse: these tiny models run on one thread)
    prompts,
    run,
    tiny_lean,
)


def counting_caches(model) -> list:
    """Record every KV cache the model makes."""
    made, make = [], model.new_cache

    def new_cache(*args):
        made.append(make(*args))
        return made[-1]

    model.new_cache = new_cache
    return made


@pytest.mark.parametrize("rule", ["confidence", "klass"])
@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_a_kept_cache_with_stale_contents_gives_the_fresh_tokens(rule, mode):
    """The second decode reuses the first one's cache, whose rows that run compacted (rows finish unevenly), and
    decodes other prompts exactly as a fresh decode does."""
    model, fresh = tiny_lean(4), tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()
    for seed in (4, 9, 11):
        p = prompts(4, seed=seed)
        reused = run(model, rule, p, cache=mode, frozen=UNEVEN, capture="on", graphs=kept)
        alone = run(fresh, rule, p, cache=mode, frozen=UNEVEN, capture="on")
        assert torch.equal(reused.tokens, alone.tokens) and torch.equal(reused.nfe, alone.nfe)
        assert torch.equal(reused.commit_step, alone.commit_step)
    assert len(made) == 1


def test_another_kind_of_decode_releases_what_is_kept():
    model = tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()
    run(model, "confidence", prompts(4), cache="dual", capture="on", graphs=kept)
    three = run(model, "confidence", prompts(3), cache="dual", capture="on", graphs=kept)
    assert len(made) == 2 and kept.storage("kv", lambda: None) is made[1]
    assert torch.equal(three.tokens, run(tiny_lean(4), "confidence", prompts(3), cache="dual").tokens)


def test_nothing_is_kept_eagerly_or_for_a_shared_conditioning_tensor():
    model = tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()
    for _ in range(2):
        run(model, "confidence", prompts(2), cache="dual", capture="off", graphs=kept)
    assert len(made) == 2

    def shared(model):
        state = MaskedState.blank(2, GEN, MASK, prompt=prompts(2))
        mask = torch.ones(1, state.length, dtype=torch.long)  # one row for every row: not a per-row input
        return decode(model, state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(GEN, 4), cache="dual",
                      capture="on", conditioning={"attention_mask": mask}, graphs=kept)

    shared(model)
    shared(model)
    assert len(made) == 4


def test_moved_weights_change_the_key():
    model = tiny_lean(4)
    before = memory_of(model)
    assert before == memory_of(model)
    model.model.float()
    assert memory_of(model) != before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("rule", ["confidence", "klass"])
def test_kept_cuda_graphs_replay_without_capturing(rule):
    """Only the first decode of a shape captures; the later ones (other prompts, and after an eager call on a longer
    canvas has grown the rotary table the graphs read) give the tokens of decodes that capture afresh."""
    model = tiny_lean(4, counting=False)
    model.model.cuda()
    kept = KeptGraphs()

    def go(model, seed, graphs):
        state = MaskedState.blank(4, GEN, MASK, prompt=prompts(4, seed=seed).cuda(), device="cuda")
        for row, cols in UNEVEN.items():
            state.tokens[row, [3 + c for c in cols]] = 1
            state.frozen[row, [3 + c for c in cols]] = True
        return decode(model, state, BUILTIN_RULES[rule](**RULES[rule]), schedule=BlockSchedule(GEN, 4),
                      cache="dual", capture="on", graphs=graphs)

    first = go(model, 4, kept)
    assert first.graphs > 0
    for seed in (9, 11):
        if seed == 11:
            model(torch.zeros(1, 4 * GEN, dtype=torch.long, device="cuda"))
        again = go(model, seed, kept)
        assert again.graphs == 0 and again.capture_s == 0
        fresh = tiny_lean(4, counting=False)
        fresh.model.cuda()
        assert torch.equal(again.tokens, go(fresh, seed, None).tokens)


def test_a_changed_setting_releases_the_slot():
    """The chooser (temperature), the statistics' dtype and the answer slots are read by the captured calls."""
    model = tiny_lean(4)
    made = counting_caches(model)
    kept = KeptGraphs()

    def go(**kw):
        state = MaskedState.blank(2, GEN, MASK, prompt=prompts(2))
        options = dict(schedule=BlockSchedule(GEN, 4), cache="dual", capture="on", graphs=kept,
                       generator=torch.Generator().manual_seed(0))
        return decode(model, state, BUILTIN_RULES["confidence"](), **{**options, **kw})

    go()
    go()
    go(chooser=TokenChooser(temperature=0.8))
    go(stats_dtype=torch.float64)
    go(early_exit=EarlyExit(2.0, torch.arange(13, 15).expand(2, 2)))
    assert len(made) == 4


def test_the_key_sees_weights_wherever_the_denoiser_holds_them():
    """A denoiser that is a module, or holds one through an adapter: moved or cast weights change the key."""
    inner = tiny_lean(4)
    holder = SimpleNamespace(text_model=SimpleNamespace(denoiser=inner))
    for denoiser, module in ((inner.model, inner.model), (holder, inner.model)):
        before = memory_of(denoiser)
        assert before and memory_of(denoiser) == before
        module.float()
        assert memory_of(denoiser) != before
        module.double()


def test_conditioning_is_keyed_by_shape_or_plain_value_else_not_at_all():
    model, state = tiny_lean(4), MaskedState.blank(2, GEN, MASK, prompt=prompts(2))

    def key(value):
        return _graph_key(model, state, (), None, {"extra": value})

    assert key(torch.zeros(2, 5)) == key(torch.ones(2, 5)) != key(torch.zeros(2, 6))  # per-row: an input
    assert key(torch.zeros(1, 5)) is None and key((torch.zeros(3),)) is None and key([1]) is None
    assert key((1, 2.0, "a", None, torch.float16)) == key((1, 2.0, "a", None, torch.float16))
    assert key(1) != key(1.0) and key(2) != key(3)


class _ReplayedCall:
    """A stand-in for a CUDA graph on the CPU: replays the call it was made from on its static inputs, into its
    static outputs, even in a later decode, whose own call (and StepForward) it never sees."""

    def __init__(self, fn, inputs: dict, outputs: tuple):
        self.fn, self.inputs, self.outputs = fn, inputs, outputs

    def replay(self) -> None:
        for mine, fresh in zip(self.outputs, self.fn(**self.inputs)):
            if mine is not None:
                mine.copy_(fresh)


@pytest.fixture
def cpu_graphs(monkeypatch):
    """StepRunner captures and replays on the CPU as it does on CUDA, with ``_ReplayedCall`` for graphs."""
    from mdsample.core import capture

    made = capture.StepRunner.__init__

    def init(self, mode, device, capturable=False):
        made(self, mode, device, capturable)
        self.graphs = self.static

    def capture_call(self, fn, inputs):
        static = {k: v.clone() for k, v in inputs.items()}
        outputs = tuple(None if t is None else t.clone() for t in fn(**static))
        self.captured += 1
        return capture._Graph(_ReplayedCall(fn, static, outputs), static, outputs)

    monkeypatch.setattr(capture.StepRunner, "__init__", init)
    monkeypatch.setattr(capture.StepRunner, "_capture", capture_call)


@pytest.mark.parametrize("rule", ["confidence", "klass"])
@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_replayed_calls_of_an_earlier_decode_give_the_fresh_tokens(cpu_graphs, rule, mode):
    """Later decodes replay the first decode's calls (its closures, its StepForward) and capture nothing; a decode
    of another kind (a drawing chooser) captures afresh; the tokens are those of fresh decodes throughout."""
    model, kept = tiny_lean(4), KeptGraphs()
    for seed, temperature in ((4, 0.0), (9, 0.0), (11, 0.8), (12, 0.8), (13, 0.0)):
        chooser = TokenChooser(temperature=temperature)
        reused = run(model, rule, prompts(4, seed=seed), cache=mode, frozen=UNEVEN, capture="on", graphs=kept,
                     chooser=chooser, generator=torch.Generator().manual_seed(seed))
        alone = run(tiny_lean(4), rule, prompts(4, seed=seed), cache=mode, frozen=UNEVEN, capture="on",
                    chooser=chooser, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(reused.tokens, alone.tokens) and torch.equal(reused.nfe, alone.nfe)
        assert (reused.graphs == 0) == (seed in (9, 12)) and alone.graphs > 0
