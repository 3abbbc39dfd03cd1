"""decode.sync_every: several steps per host sync give the one-step loop's tokens and NFE, with fewer syncs."""

from __future__ import annotations

import os
import sys
import warnings

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, TokenChooser, decode
from mdsample.core.infill import EarlyExit
from mdsample.core.loop import Editing
from mdsample.core.rules import BUILTIN_RULES
from mdsample.core.rules.base import Rule, StepContext, top_k_mask
from mdsample.errors import ConfigError
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
from tests.core.test_corruption import Recording, uniform_state
from tests.core.toys import MixingDenoiser, ProductDenoiser

EVERY = (1, 3, 8)
OPTIONS = {"klass": {"conf_threshold": 0.6, "kl_threshold": 0.05}, "med": {"entropy_threshold": 0.8},
           "ar_med": {"entropy_threshold": 0.8}, "eb": {"gamma": 0.5}, "threshold": {"threshold": 0.7}}
DRAWING = {"random", "maskgit"}
"""Rules that draw from the generator at every step, even at temperature 0."""
PROMPT = torch.tensor([[4, 2, 7]])


def toy_decode(rule: str, sync_every: int, *, batch: int = 3, holes: bool = True, block: int | None = 4,
               temperature: float = 0.0, capture: str = "off", steps: int = 16, **kw):
    """MixingDenoiser over 16 generated slots; with ``holes`` row 1 starts with 5 slots frozen, so it finishes
    earlier than the others (and, with blocks, leaves a block after one step)."""
    model = MixingDenoiser(vocab=12, length=19, seed=1)
    state = MaskedState.blank(batch, 16, model.mask_id, prompt=PROMPT)
    if holes:
        state.tokens[1, 7:12] = 1
        state.frozen[1, 7:12] = True
    return decode(model, state, BUILTIN_RULES[rule](**OPTIONS.get(rule, {})), schedule=BlockSchedule(steps, block),
                  chooser=TokenChooser(temperature=temperature), generator=torch.Generator().manual_seed(3),
                  capture=capture, sync_every=sync_every, **kw)


def assert_same(results):
    first = results[0]
    for other in results[1:]:
        assert torch.equal(first.tokens, other.tokens)
        assert torch.equal(first.nfe, other.nfe)
        assert torch.equal(first.commit_step, other.commit_step)


@pytest.mark.parametrize("capture", ["off", "on"])
@pytest.mark.parametrize("block", [None, 4])
@pytest.mark.parametrize("rule", sorted(set(BUILTIN_RULES) - DRAWING))
def test_rows_finishing_at_different_steps_keep_their_tokens_and_nfe(rule, block, capture):
    results = [toy_decode(rule, n, block=block, capture=capture) for n in EVERY]
    assert_same(results)
    assert len(set(results[0].nfe.tolist())) > 1  # rows finish at different steps
    assert results[0].syncs >= results[1].syncs >= results[2].syncs and results[0].syncs > results[2].syncs


@pytest.mark.parametrize("block", [None, 4])
@pytest.mark.parametrize("rule", ["confidence", "margin", "entropy"])
def test_tied_scores_commit_in_the_one_step_order(rule, block):
    """Positions with identical logits tie exactly: fixed-count rules call top-k with the one-step loop's k (the
    chunk plan replays the schedule on the host), so torch.topk breaks the ties the same way."""
    logits = torch.randn(4, 12, generator=torch.Generator().manual_seed(0)).repeat(5, 1)[:19] * 3

    def go(n):
        state = MaskedState.blank(3, 16, 11, prompt=PROMPT)
        state.tokens[1, 7:12] = 1
        state.frozen[1, 7:12] = True
        return decode(ProductDenoiser(logits, 11), state, BUILTIN_RULES[rule](), schedule=BlockSchedule(16, block),
                      sync_every=n)

    results = [go(n) for n in EVERY]
    assert_same(results)
    assert len(set(results[0].nfe.tolist())) > 1


@pytest.mark.parametrize("block", [None, 4])
@pytest.mark.parametrize("rule", sorted(BUILTIN_RULES))
def test_sampled_tokens_follow_the_same_draws(rule, block):
    """Temperature 1 with a fixed generator: one row (draws are made for a chunk's rows, core/multistep.py)."""
    assert_same([toy_decode(rule, n, batch=1, holes=False, block=block, temperature=1.0) for n in EVERY])


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("rule", ["confidence", "random", "maskgit", "margin"])
def test_rows_that_finish_together_share_the_draws(rule, temperature):
    """Fixed-schedule rules finish every row at the same step, so a batch draws exactly as the one-step loop."""
    assert_same([toy_decode(rule, n, holes=False, temperature=temperature, capture="on") for n in EVERY])


def test_draws_after_a_row_finished_inside_a_chunk_are_reproducible():
    first, again = (toy_decode("random", 8) for _ in range(2))
    assert torch.equal(first.tokens, again.tokens)
    assert torch.equal(first.nfe, toy_decode("random", 1).nfe)


def cached_decode(rule: str, mode: str, capture: str, sync_every: int):
    """tiny_lean over prompts of 3 and 12 slots in blocks of 4, rows finishing at different steps (UNEVEN)."""
    state = MaskedState.blank(4, GEN, MASK, prompt=prompts(4, seed=4))
    for row, cols in UNEVEN.items():
        state.tokens[row, [3 + c for c in cols]] = 1
        state.frozen[row, [3 + c for c in cols]] = True
    options = RULES.get(rule, OPTIONS.get(rule, {}))
    return decode(tiny_lean(4), state, BUILTIN_RULES[rule](**options), schedule=BlockSchedule(GEN, 4),
                  stats_dtype=torch.float64, cache=mode, capture=capture, sync_every=sync_every)


@pytest.mark.parametrize("capture", ["off", "on"])
@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("rule", sorted(set(BUILTIN_RULES) - DRAWING))
def test_kv_caches_pause_rows_due_for_a_refresh(rule, mode, capture):
    """A row whose block ends inside a chunk waits for the next sync to refresh; no token or NFE changes."""
    assert_same([cached_decode(rule, mode, capture, n) for n in EVERY])


ADAPTIVE = {"threshold-0.2": ("threshold", {"threshold": 0.2}), "threshold-0.05": ("threshold", {"threshold": 0.05}),
            "klass-loose": ("klass", {"conf_threshold": 0.2, "kl_threshold": 1.0})}


@pytest.mark.parametrize("capture", ["off", "on"])
@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("name", sorted(ADAPTIVE))
def test_adaptive_rules_pause_rows_inside_chunks_under_a_cache(name, mode, capture):
    """Blocks end after a varying number of steps: rows pause (no-op steps) until the next sync refreshes them."""
    rule, options = ADAPTIVE[name]

    def go(n):
        state = MaskedState.blank(4, GEN, MASK, prompt=prompts(4, seed=4))
        for row, cols in UNEVEN.items():
            state.tokens[row, [3 + c for c in cols]] = 1
            state.frozen[row, [3 + c for c in cols]] = True
        return decode(tiny_lean(4), state, BUILTIN_RULES[rule](**options), schedule=BlockSchedule(GEN, 4),
                      stats_dtype=torch.float64, cache=mode, capture=capture, sync_every=n)

    results = [go(n) for n in EVERY]
    assert_same(results)
    assert results[2].steps > results[0].steps and results[2].syncs <= results[0].syncs  # rows paused


@pytest.mark.parametrize("mode", ["none", "dual"])
def test_one_row_syncs_once_per_chunk(mode):
    """Batch 1, a fixed schedule of 3 steps per block: chunks end at block ends, where a refresh is due."""
    results = [run(tiny_lean(2), "confidence", prompts(1), cache=mode, block=6, steps=GEN // 2, sync_every=n)
               for n in (1, 3, 8)]
    assert_same(results)
    # 6 steps: every step / two chunks of 3 / one chunk of 6 (no cache) or one per block (dual); then the last check
    assert [r.syncs for r in results] == [GEN // 2 + 1, 2 + 1, (1 if mode == "none" else 2) + 1]
    assert [r.steps for r in results] == [GEN // 2] * 3


@pytest.mark.parametrize("mode", ["none", "dual"])
@pytest.mark.parametrize("rule", ["confidence", "klass"])
def test_one_step_chunks_hand_top_k_its_k(rule, mode, monkeypatch):
    """With sync_every 1 the sync's counts give every step's k.max() on the host, so a top-k rule never reads it
    back (a second device sync per step); the bound is the loop's own k.max(), so the tokens cannot change."""
    seen = []
    select = BUILTIN_RULES[rule].select

    def spy(self, stats, ctx: StepContext):
        seen.append((ctx.k_max, int(ctx.k.max())))
        return select(self, stats, ctx)

    monkeypatch.setattr(BUILTIN_RULES[rule], "select", spy)
    run(tiny_lean(4), rule, prompts(4, seed=4), cache=mode, frozen=UNEVEN)
    assert seen and all(bound == k for bound, k in seen), seen


@pytest.mark.parametrize("every", [1, 3])
def test_maskgit_chunks_hand_top_k_its_cosine_k(every, monkeypatch):
    """The cosine schedule (several positions per step): the chunk's first step gets the loop's exact k.max()."""
    seen = []
    select = BUILTIN_RULES["maskgit"].select

    def spy(self, stats, ctx: StepContext):
        seen.append((ctx.k_max, int(ctx.k.max())))
        return select(self, stats, ctx)

    monkeypatch.setattr(BUILTIN_RULES["maskgit"], "select", spy)
    toy_decode("maskgit", every, block=8, steps=6, temperature=1.0)
    ks = {k for _, k in seen}
    assert len(ks) > 1  # the cosine counts vary
    if every == 1:
        assert all(bound == k for bound, k in seen), seen
    else:  # the first step of a chunk gets k.max(), later ones the block length
        assert all(bound >= k for bound, k in seen) and any(bound == k < 8 for bound, k in seen), seen


def test_cache_refresh_every_n_steps():
    results = [run(tiny_lean(4), "klass", prompts(4, seed=4), cache="dual", refresh=2, frozen=UNEVEN, sync_every=n)
               for n in EVERY]
    assert_same(results)


def test_klass_peeks_under_the_dual_cache():
    """KLASS's one-block window under the dual cache: the peek of a row whose block advanced inside a chunk runs at
    the next sync, with the one-step loop's tokens, NFE and commit steps (rows in different blocks, a block skipped)."""
    frozen = {**UNEVEN, 3: [4, 5, 6, 7]}
    models = [tiny_lean(4) for _ in EVERY]
    results = [run(m, "klass", prompts(4, seed=4), cache="dual", frozen=frozen, sync_every=n)
               for m, n in zip(models, EVERY, strict=True)]
    assert_same(results)
    assert all(sum(b for kind, b, _ in m.calls if kind == "peek") == 5 for m in models)


def test_early_exit_and_answer_first():
    answer = torch.arange(13, 15).expand(3, 2)

    def go(n, **kw):
        state = MaskedState.blank(3, GEN, MASK, prompt=prompts(3, seed=5))
        state.tokens[0, 9:] = 1
        state.frozen[0, 9:] = True
        return decode(tiny_lean(5), state, BUILTIN_RULES["confidence"](), schedule=BlockSchedule(GEN),
                      sync_every=n, **kw)

    exits = [go(n, early_exit=EarlyExit(2.0, answer)) for n in EVERY]
    assert_same(exits)
    assert all(torch.equal(exits[0].state.exited, r.state.exited) for r in exits)
    assert exits[0].state.exited.all() and len(set(exits[0].nfe.tolist())) == 3  # rows exit at different steps
    assert_same([go(n, answer_first=answer) for n in EVERY])


@pytest.mark.parametrize("rule", ["confidence", "eb"])
def test_uniform_corruption_one_row(rule):
    def go(n):
        return decode(MixingDenoiser(vocab=11, length=12), uniform_state(batch=1), BUILTIN_RULES[rule](),
                      schedule=BlockSchedule(steps=5), generator=torch.Generator().manual_seed(1), sync_every=n)

    assert_same([go(n) for n in EVERY])


def test_self_conditioning_rows_finishing_at_different_steps():
    """The previous step's logits of a row that finished inside a chunk are never read again."""
    def go(n):
        state = MaskedState.blank(3, 10, 10, prompt=None)
        state.tokens[1, 3:8] = 1
        state.frozen[1, 3:8] = True
        return decode(Recording(self_conditioning=True, vocab=11, length=10), state, BUILTIN_RULES["confidence"](),
                      schedule=BlockSchedule(steps=10), sync_every=n)

    results = [go(n) for n in EVERY]
    assert_same(results)
    assert len(set(results[0].nfe.tolist())) > 1


@pytest.mark.parametrize("threshold", [0.05, 0.2])
def test_a_paused_uniform_row_keeps_its_noise_flags(threshold):
    """Under a cache a row whose block ends inside a chunk pauses; on a uniform canvas its uncommitted flags stay, so
    every position is still committed by a step of its own (draws land on other rows: core/multistep.py)."""
    state = MaskedState.blank(4, GEN, -1, prompt=prompts(4, seed=4), corruption="uniform", vocab_size=MASK,
                              generator=torch.Generator().manual_seed(0))
    for row, cols in UNEVEN.items():
        state.uncommitted[row, [3 + c for c in cols]] = False
    result = decode(tiny_lean(4), state, BUILTIN_RULES["threshold"](threshold=threshold),
                    schedule=BlockSchedule(GEN, 4), cache="dual", generator=torch.Generator().manual_seed(1),
                    sync_every=8)
    assert result.steps > result.nfe.max()  # rows paused
    assert not state.masked.any()
    steps = result.commit_step[:, 3:].view(4, GEN // 4, 4)  # rows, blocks, positions
    free = torch.tensor([[c not in UNEVEN.get(r, []) for c in range(GEN)] for r in range(4)]).view(4, GEN // 4, 4)
    assert ((steps >= 0) == free).all()
    # one step commits inside one block: no commit step is shared by two blocks of a row
    first, last = steps.masked_fill(~free, 10**6).amin(dim=2), steps.amax(dim=2)
    assert all(last[r, b] < first[r, c] for r in range(4) for b in range(GEN // 4) for c in range(b + 1, GEN // 4)
               if free[r, b].any() and free[r, c].any())


class _Reads:
    """Counts the calls that read a tensor's value back to the host (each is a device sync on a GPU), except those
    of the chunk planner, which reads only the copy the sync brought to the host (core/multistep.py)."""

    NAMES = ("cpu", "item", "tolist", "__int__", "__bool__", "__float__", "__index__")

    def __init__(self, monkeypatch):
        self.count = 0
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(original))

    def _counting(self, original):
        def counted(tensor, *args, **kwargs):
            self.count += not sys._getframe(1).f_code.co_filename.endswith(os.path.join("core", "multistep.py"))
            return original(tensor, *args, **kwargs)

        return counted


@pytest.mark.parametrize("rule", ["confidence", "klass", "maskgit", "margin"])
def test_host_reads_drop_with_the_syncs(rule, monkeypatch):
    """Reading values back happens at the syncs only: a constant number per sync, however many steps a chunk has."""
    reads = _Reads(monkeypatch)
    counts, results = [], []
    for n in (1, 8):
        reads.count = 0
        results.append(toy_decode(rule, n, batch=1, holes=False, block=None))
        counts.append(reads.count)
    one, eight = results
    assert one.syncs == one.steps + 1 and eight.syncs == 3  # 16 steps: two chunks of 8, then the final check
    assert counts[0] >= 2 * one.steps  # the sync and top-k's k.max() (or the rule's own reads) every step
    assert counts[1] <= 4 * eight.syncs, counts


def test_refusals():
    class HostRule(Rule):
        name = "host"

        def select(self, stats, ctx: StepContext) -> torch.Tensor:
            return top_k_mask(stats.conf, ctx.active, ctx.k)

    with pytest.raises(ConfigError, match="decode.sync_every must be auto or an integer >= 1"):
        toy_decode("confidence", 0)
    with pytest.raises(ConfigError, match="'host' does not declare device_only"):
        decode(MixingDenoiser(vocab=12, length=19), MaskedState.blank(1, 16, 11, prompt=PROMPT), HostRule(),
               sync_every=2)
    state = MaskedState.blank(1, 16, 11, prompt=PROMPT)
    with pytest.raises(ConfigError, match="post-mask editing"):
        decode(MixingDenoiser(vocab=12, length=19), state, BUILTIN_RULES["confidence"](), editing=Editing(0.9),
               sync_every=2)
    assert decode(MixingDenoiser(vocab=12, length=19), state, HostRule(), sync_every=1).syncs == 17


def test_config_key_reaches_decode(toy_plugins, tmp_path):
    from mdsample import sample
    from mdsample.config import resolve_config, sync_every

    assert sync_every(resolve_config("toy", "confidence").decode.sync_every) == "auto"
    assert sync_every(resolve_config("toy", "confidence", dotlist=["decode.sync_every=4"]).decode.sync_every) == 4
    for bad in ("0", "-2", "often"):
        with pytest.raises(ConfigError, match="decode.sync_every must be auto or an integer >= 1"):
            resolve_config("toy", "confidence", dotlist=[f"decode.sync_every={bad}"])
    one, four, auto = (sample("toy", "confidence", 3, device="cpu", progress=False, out=str(tmp_path / str(n)),
                              decode={"sync_every": n, "steps": 4}) for n in (1, 4, "auto"))
    assert torch.equal(one.tokens, four.tokens) and torch.equal(one.nfe, four.nfe)
    assert torch.equal(one.tokens, auto.tokens) and torch.equal(one.nfe, auto.nfe)


def test_auto_takes_several_steps_only_where_nothing_can_change():
    from mdsample.core.multistep import AUTO_EVERY, auto_sync_every

    cuda, cpu = torch.device("cuda"), torch.device("cpu")  # only the device type is read
    plain, klass = BUILTIN_RULES["confidence"](), BUILTIN_RULES["klass"]()
    assert auto_sync_every(plain, exact=True, cached=True, batch=8, device=cuda) == AUTO_EVERY == 8
    assert auto_sync_every(plain, exact=True, cached=False, batch=1, device=cuda) == 8
    assert auto_sync_every(plain, exact=True, cached=False, batch=2, device=cuda) == 1  # a row may finish early
    assert auto_sync_every(plain, exact=False, cached=True, batch=1, device=cuda) == 1  # e.g. early exit
    assert auto_sync_every(klass, exact=False, cached=True, batch=1, device=cuda) == 1  # adaptive: may overshoot
    assert auto_sync_every(plain, exact=True, cached=True, batch=1, device=cpu) == 1  # nothing runs ahead of the host


def test_auto_is_one_sync_per_step_on_the_cpu():
    one, auto = (decode(MixingDenoiser(vocab=12, length=12), MaskedState.blank(1, 12, 11, device="cpu"),
                        BUILTIN_RULES["confidence"](), **kw) for kw in ({"sync_every": 1}, {}))
    assert auto.syncs == one.syncs == one.steps + 1 and torch.equal(auto.tokens, one.tokens)


def cuda_decode(rule: str, sync_every: int, mode: str, batch: int, *, uneven: bool = True, block: int = 4,
                steps: int = GEN, synced: list[int] | None = None):
    """A decode on the GPU with the static (captured) step; with ``synced``, the decode call alone runs under torch's
    sync debug mode and the number of synchronising calls it reports is appended."""
    p = prompts(batch, seed=4).cuda()
    model = tiny_lean(4, dtype=torch.float64, counting=False)
    model.model.cuda()
    state = MaskedState.blank(batch, GEN, MASK, prompt=p, device="cuda")
    for row, cols in (UNEVEN if uneven else {}).items():
        state.tokens[row, [3 + c for c in cols]] = 1
        state.frozen[row, [3 + c for c in cols]] = True
    rule_ = BUILTIN_RULES[rule](**RULES[rule])
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if synced is not None:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            result = decode(model, state, rule_, schedule=BlockSchedule(steps, block), cache=mode, capture="on",
                            sync_every=sync_every)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    if synced is not None:
        synced.append(sum("synchroniz" in str(w.message) for w in caught))
    return result


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["none", "prefix", "dual"])
@pytest.mark.parametrize("rule", sorted(RULES))
def test_cuda_graph_chunks_give_the_one_step_tokens(rule, mode):
    results = [cuda_decode(rule, n, mode, batch=4) for n in EVERY]
    assert all(r.graphs > 0 for r in results)
    assert_same(results)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", ["none", "dual"])
@pytest.mark.parametrize("rule", ["confidence", "klass"])
def test_cuda_chunks_make_no_device_sync_between_syncs(rule, mode):
    """torch.cuda's sync debug mode reports every synchronising call: with sync_every 8 at batch 1 they come at the
    chunks' syncs (and the graphs' captures) only, far fewer than one step at a time."""
    synced: list[int] = []
    one, eight = (cuda_decode(rule, n, mode, batch=1, uneven=False, block=6, steps=GEN // 2, synced=synced)
                  for n in (1, 8))
    assert_same([one, eight])
    assert eight.syncs <= 3 < one.syncs
    assert synced[1] < synced[0] and synced[1] <= 3 * (eight.syncs + eight.graphs), synced
