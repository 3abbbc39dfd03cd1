"""KV caches driven by decode(): exactness of the cached calls, Fast-dLLM's semantics, per-row blocks, compute saved."""

from __future__ import annotations

import pytest
import torch

from mdsample.core import BlockSchedule, MaskedState, decode
from mdsample.core.cache import KVCache
from mdsample.core.infill import EarlyExit
from mdsample.core.rules import BUILTIN_RULES
from mdsample.errors import ConfigError
from mdsample.models.cached import CachedLean
from mdsample.models.lean import LayerKV, LeanConfig, LeanTransformer
from tests.core.reference_loops import linear_counts
from tests.core.toys import CanvasCaching, CanvasCachingNoPeek, MixingDenoiser

VOCAB = 24
MASK = VOCAB - 1
GEN, BLOCK = 12, 4
UNEVEN = {0: [6, 7, 8, 9, 10, 11], 1: [0, 1, 2], 2: [5, 9]}
"""Row 0 finishes early, row 1 leaves its first block after one step, row 2 has holes in two blocks."""
RULES = {"confidence": {}, "klass": {"conf_threshold": 0.5, "kl_threshold": 0.05}, "threshold": {"threshold": 0.6},
         "med": {"entropy_threshold": 0.8}}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: intra-op threads only add synchronisation (tens of times slower on a busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class CountingLean(CachedLean):
    """CachedLean that records every call as (kind, rows, positions computed)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, tokens, **kw):
        self.calls.append(("plain", *tokens.shape))
        return super().__call__(tokens, **kw)

    def prefill(self, tokens, cache, rows, **kw):
        self.calls.append(("prefill", *tokens.shape))
        return super().prefill(tokens, cache, rows, **kw)

    def cached(self, tokens, columns, slots, cache, outputs, **kw):
        self.calls.append(("cached", *tokens.shape))
        return super().cached(tokens, columns, slots, cache, outputs, **kw)

    def peek(self, tokens, columns, cache, rows, **kw):
        self.calls.append(("peek", *tokens.shape))
        return super().peek(tokens, columns, cache, rows, **kw)

    def positions(self) -> int:
        return sum(b * q for _, b, q in self.calls)


def tiny_lean(seed: int = 0, dtype: torch.dtype = torch.float64, counting: bool = True) -> CachedLean:
    """A 2-layer grouped-query lean transformer with random weights, sharp enough to have clear argmaxes."""
    torch.manual_seed(seed)
    cfg = LeanConfig(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                     intermediate_size=64, rope_theta=10000.0, norm_eps=1e-6)
    model = LeanTransformer(cfg).to(dtype).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.4)
    return (CountingLean if counting else CachedLean)(model, MASK)


def prompts(b: int, length: int = 3, seed: int = 7) -> torch.Tensor:
    return torch.randint(0, MASK, (b, length), generator=torch.Generator().manual_seed(seed))


def run(model, rule: str, prompt: torch.Tensor, cache: str = "none", refresh: int = 0, steps: int = GEN,
        block: int = BLOCK, frozen: dict[int, list[int]] | None = None, **kw):
    """``frozen`` gives, per row, generation slots that start filled (token 1) and frozen."""
    state = MaskedState.blank(prompt.shape[0], GEN, MASK, prompt=prompt)
    for row, cols in (frozen or {}).items():
        cols = [prompt.shape[1] + c for c in cols]
        state.tokens[row, cols] = 1
        state.frozen[row, cols] = True
    return decode(model, state, BUILTIN_RULES[rule](**RULES[rule]), schedule=BlockSchedule(steps, block),
                  stats_dtype=torch.float64, cache=cache, cache_refresh=refresh, **kw)


def test_cached_queries_right_after_prefill_reproduce_the_full_forward():
    """With the cache just built from the same canvas, recomputing any columns (per row, a window starting at a
    different block, padding and a read-only query) gives the full forward's logits there."""
    model = tiny_lean()
    tokens = torch.randint(0, VOCAB, (3, 15), generator=torch.Generator().manual_seed(1))
    cache = model.new_cache(4, 15, torch.device("cpu"))
    full = model.prefill(tokens, cache, torch.arange(3))
    assert torch.equal(full, model(tokens))
    picked = torch.tensor([[3, 4, 14], [0, 7, 8], [11, 12, 13]])
    stored = [t.clone() for t in cache.tensors]
    narrow = model.prefill(tokens, cache, torch.arange(3), columns=picked)  # the window alone: no head elsewhere
    torch.testing.assert_close(narrow, full[torch.arange(3).unsqueeze(1), picked], rtol=1e-12, atol=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(stored, cache.tensors, strict=True))
    starts = torch.tensor([[3], [7], [11]])
    window = starts + torch.arange(6)  # the last row's window runs past the canvas: padding
    columns = torch.cat([window.clamp_max(14), torch.full((3, 1), 14)], dim=1)
    slots = torch.cat([torch.where(window < 15, window, 15), torch.full((3, 1), 15)], dim=1)
    logits = model.cached(tokens.gather(1, columns), columns, slots, cache, 7)
    expected = full[torch.arange(3).unsqueeze(1), columns]
    real = torch.cat([window < 15, torch.ones(3, 1, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(logits[real], expected[real], rtol=1e-10, atol=1e-10)


def test_dual_and_prefix_calls_match_the_lean_prefix_suffix_forward():
    """After tokens change inside the block, the cached calls equal the lean module's own prefix / suffix forward
    on the stored keys/values (Fast-dLLM's dual and prefix cache): an independent path through the same weights."""
    model = tiny_lean()
    tokens = torch.randint(0, MASK, (2, 15), generator=torch.Generator().manual_seed(2))
    tokens[:, 3:] = MASK
    cache = model.new_cache(3, 15, torch.device("cpu"))
    kv = model.model(tokens, return_kv=True).kv
    model.prefill(tokens, cache, torch.arange(2))
    tokens[:, 4] = 5  # the step after the refresh committed a token in the block [3, 7)
    s, e = 3, 7
    columns = torch.arange(s, e).expand(2, -1)
    dual = model.cached(tokens[:, s:e], columns, columns, cache, 4)
    prefix = [LayerKV(k[:, :, :s], v[:, :, :s]) for k, v in kv]
    suffix = [LayerKV(k[:, :, e:], v[:, :, e:]) for k, v in kv]
    expected = model.model(tokens[:, s:e], prefix=prefix, suffix=suffix).logits
    torch.testing.assert_close(dual, expected, rtol=1e-10, atol=1e-10)

    kv = model.model(tokens, return_kv=True).kv
    model.prefill(tokens, cache, torch.arange(2))
    tokens[:, 9] = 6  # the suffix changes too: the prefix cache recomputes it
    columns = torch.arange(s, 15).expand(2, -1)
    rest = model.cached(tokens[:, s:], columns, columns, cache, 15 - s)
    expected = model.model(tokens[:, s:], prefix=[LayerKV(k[:, :, :s], v[:, :, :s]) for k, v in kv]).logits
    torch.testing.assert_close(rest, expected, rtol=1e-10, atol=1e-10)


def fast_dllm(model: CachedLean, prompt: torch.Tensor, mode: str) -> torch.Tensor:
    """Fast-dLLM's generate_with_{prefix,dual}_cache (low_confidence, temperature 0, batch 1) written plainly on the
    lean module's prefix / suffix forward: per block a full forward that commits the first step's tokens and keeps
    the keys/values, then cached steps until the block holds no mask."""
    lean = model.model
    x = torch.cat([prompt, torch.full((1, GEN), MASK)], dim=1)
    per_block = GEN // (GEN // BLOCK)
    for b in range(GEN // BLOCK):
        s, e = prompt.shape[1] + b * BLOCK, prompt.shape[1] + (b + 1) * BLOCK
        counts = linear_counts(int((x[0, s:e] == MASK).sum()), per_block)
        out = lean(x, return_kv=True)
        kv = out.kv
        logits, first, i = out.logits[:, s:e], True, 0
        while True:
            if not first:
                pre = [LayerKV(k[:, :, :s], v[:, :, :s]) for k, v in kv]
                if mode == "dual":
                    suf = [LayerKV(k[:, :, e:], v[:, :, e:]) for k, v in kv]
                    logits = lean(x[:, s:e], prefix=pre, suffix=suf).logits
                else:
                    logits = lean(x[:, s:], prefix=pre).logits[:, :BLOCK]
            logits[..., MASK] = float("-inf")
            x0 = logits.argmax(-1)
            conf = torch.softmax(logits.double(), -1).gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            conf = torch.where(x[:, s:e] == MASK, conf, torch.tensor(float("-inf"), dtype=torch.float64))
            pick = torch.topk(conf[0], k=counts[i]).indices
            x[0, s + pick] = x0[0, pick]
            first, i = False, i + 1
            if not (x[0, s:e] == MASK).any():
                break
    return x


@pytest.mark.parametrize("mode", ["prefix", "dual"])
@pytest.mark.parametrize("seed", [0, 3])
def test_cached_decode_follows_fast_dllm(mode, seed):
    """Same tokens as Fast-dLLM's loops, and (for these seeds) not the uncached tokens: the stale keys/values of a
    cache change the result, so matching the reference is not matching the uncached loop."""
    model = tiny_lean(seed)
    prompt = prompts(1, seed=seed)
    result = run(model, "confidence", prompt, cache=mode)
    assert torch.equal(result.tokens, fast_dllm(model, prompt, mode))
    assert not torch.equal(result.tokens, run(model, "confidence", prompt).tokens)


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_refresh_every_step_gives_the_uncached_tokens(rule, mode):
    model = tiny_lean(3)
    p = prompts(3, seed=3)
    plain = run(model, rule, p, frozen=UNEVEN)
    cached = run(model, rule, p, cache=mode, refresh=1, frozen=UNEVEN)
    assert torch.equal(cached.tokens, plain.tokens)
    assert torch.equal(cached.nfe, plain.nfe) and torch.equal(cached.commit_step, plain.commit_step)
    assert {kind for kind, _, _ in model.calls} == {"plain", "prefill"}


@pytest.mark.parametrize("rule", ["confidence", "klass", "threshold"])
@pytest.mark.parametrize(("mode", "refresh"), [("prefix", 0), ("dual", 0), ("dual", 2)])
def test_cached_batch_equals_row_by_row(rule, mode, refresh):
    """Rows in different blocks, rows finishing early (dropped from the cache), a refresh interval: a batch gives
    each row exactly its own result. The adaptive rule makes rows cross block boundaries at different steps."""
    model = tiny_lean(4)
    p = prompts(4, seed=4)
    batched = run(model, rule, p, cache=mode, refresh=refresh, frozen=UNEVEN)
    for i in range(4):
        single = run(model, rule, p[i : i + 1], cache=mode, refresh=refresh,
                     frozen={0: UNEVEN[i]} if i in UNEVEN else None)
        assert torch.equal(batched.tokens[i], single.tokens[0])
        assert int(batched.nfe[i]) == int(single.nfe[0])


def test_rows_in_different_blocks_make_a_mixed_step():
    """Row 1 has one masked slot in its first block, so it reaches the second block three steps before the others:
    that step refreshes row 1 alone (a prefill of one row right after a cached call of all open rows)."""
    model = tiny_lean(4)
    run(model, "confidence", prompts(4, seed=4), cache="dual", frozen=UNEVEN)
    pairs = zip(model.calls, model.calls[1:])
    mixed = [(b, sub) for (k, b, _), (k2, sub, _) in pairs if (k, k2) == ("cached", "prefill") and sub < b]
    assert mixed


def test_the_cache_avoids_compute():
    """One token per step, blocks of 4 over 12 slots after a 3-token prompt (canvas 15), batch 1: the uncached loop
    computes 12 x 15 positions; the dual cache one full forward per block plus 3 steps of the block's 4; the prefix
    cache one full forward per block plus 3 steps of everything from the block on."""
    p = prompts(1)
    costs = {}
    for mode in ("none", "prefix", "dual"):
        model = tiny_lean()
        run(model, "confidence", p, cache=mode)
        costs[mode] = model.positions()
    assert costs == {"none": 12 * 15, "prefix": 3 * 15 + 3 * (12 + 8 + 4), "dual": 3 * 15 + 3 * 3 * 4}


def test_klass_dual_cache_computes_one_block_and_peeks_at_the_next_once_per_block():
    """KLASS's window under the dual cache is the active block; the next block's distribution comes from one peek
    of one block per row and block advance (3 blocks: 2 advances), counted as an NFE. At batch 1 every open row
    peeks, so the peek is the step's own cached call (StepForward.peek), right before the new block's refresh."""
    model = tiny_lean()
    result = run(model, "klass", prompts(1), cache="dual")
    kinds = [kind for kind, _, _ in model.calls]
    assert {q for kind, _, q in model.calls if kind == "cached"} == {BLOCK}
    assert "peek" not in kinds and kinds.count("prefill") == 3
    refreshes = [i for i, kind in enumerate(kinds) if kind == "prefill"][1:]
    assert all(kinds[i - 2 : i] == ["cached", "cached"] for i in refreshes)  # the block's last step, then the peek
    assert int(result.nfe[0]) == len(kinds)


def test_klass_peeks_of_some_rows_are_read_only_calls_of_those_rows():
    """When only some open rows peek, the peek is the denoiser's read-only ``peek`` of those rows (one row here:
    UNEVEN's rows leave their blocks at different steps), and the decode equals the rows decoded one by one."""
    model = tiny_lean()
    p = prompts(3, seed=4)
    batched = run(model, "klass", p, cache="dual", frozen=UNEVEN)
    assert {q for kind, _, q in model.calls if kind == "peek"} == {BLOCK}
    for row in range(3):
        alone = run(tiny_lean(), "klass", p[row : row + 1], cache="dual", frozen={0: UNEVEN[row]})
        assert torch.equal(alone.tokens[0], batched.tokens[row]) and int(alone.nfe[0]) == int(batched.nfe[row])


def test_peek_reads_any_rows_and_stores_nothing():
    """Right after the prefill, a peek of any rows (not only the first) and columns gives the full forward's logits
    there, and leaves every stored key/value as it was (CachedLean and its Dream variant share the path)."""
    model = tiny_lean(counting=False)
    tokens = torch.randint(0, VOCAB, (3, 15), generator=torch.Generator().manual_seed(1))
    cache = model.new_cache(4, 15, torch.device("cpu"))
    full = model.prefill(tokens, cache, torch.arange(3))
    stored = [t.clone() for t in cache.tensors]
    rows = torch.tensor([2, 0])
    columns = torch.tensor([[7, 8, 9, 10], [3, 4, 5, 6]])
    queries = tokens[rows].gather(1, columns)
    got = model.peek(queries, columns, cache, rows)
    torch.testing.assert_close(got, full[rows.unsqueeze(1), columns], rtol=1e-10, atol=1e-10)
    assert all(torch.equal(a, b) for a, b in zip(stored, cache.tensors, strict=True))


UNEVEN4 = {**UNEVEN, 3: [4, 5, 6, 7]}
"""UNEVEN, and for row 3 a whole frozen middle block: its block moves by two (no peek: as with two blocks, the
history starts afresh)."""


class WrongPeek(CanvasCaching):
    def peek(self, tokens, columns, cache, rows, **_):
        return torch.zeros(*tokens.shape, self.vocab_size, dtype=torch.float64)


def test_klass_peeks_give_the_uncached_tokens_on_a_denoiser_without_staleness():
    """On a denoiser whose cached calls equal the full forward (CanvasCaching), KLASS under the dual cache with its
    one-block window and peeks gives exactly the uncached loop's tokens, as the two-block window (a denoiser without
    ``peek``) does, while a wrong peek changes them (the first KLs of a block decide here); its NFE are the uncached
    ones plus one per advance to the next block, and each peek is one call over the rows that advanced in the last
    step alone, at their new block's first column."""
    mixing = MixingDenoiser(vocab=VOCAB, length=15, seed=0, sharpness=4.0)
    p = prompts(4, seed=4)

    def go(model, cache="dual"):
        state = MaskedState.blank(4, GEN, MASK, prompt=p)
        for row, cols in UNEVEN4.items():
            state.tokens[row, [3 + c for c in cols]] = 1
            state.frozen[row, [3 + c for c in cols]] = True
        rule = BUILTIN_RULES["klass"](conf_threshold=0.2, kl_threshold=1.0)
        return decode(model, state, rule, schedule=BlockSchedule(GEN, BLOCK), stats_dtype=torch.float64, cache=cache)

    plain = go(mixing, "none")
    no_peek, peeking = CanvasCachingNoPeek(mixing), CanvasCaching(mixing)
    two, one = go(no_peek), go(peeking)
    assert torch.equal(plain.tokens, two.tokens) and torch.equal(plain.nfe, two.nfe)
    assert torch.equal(plain.commit_step, two.commit_step)
    assert torch.equal(plain.tokens, one.tokens)
    assert not torch.equal(plain.tokens, go(WrongPeek(mixing)).tokens)
    advances = torch.tensor([1, 2, 2, 0])  # blocks visited: row 0: 0, 1; rows 1, 2: 0, 1, 2; row 3: 0, 2
    assert torch.equal(one.nfe, plain.nfe + advances)
    assert {q for kind, _, q in no_peek.calls if kind == "cached"} == {2 * BLOCK}
    assert {q for kind, _, q in peeking.calls if kind in ("cached", "peek")} == {BLOCK}
    assert sum(len(rows) for rows, _ in peeking.peeked) == int(advances.sum())
    assert all(len(rows) < 4 for rows, _ in peeking.peeked)
    starts = sorted(c - 3 for _, cols in peeking.peeked for c in cols)
    assert starts == [BLOCK] * 3 + [2 * BLOCK] * 2


@pytest.mark.parametrize("refresh", [0, 2])
def test_klass_peeks_batch_equals_row_by_row_and_only_advancing_rows_peek(refresh):
    """Rows advance at different steps; a peek batches the rows that advanced in the last step, and a batch gives
    each row its own tokens and NFE (tiny_lean: stale keys/values matter here)."""
    model = tiny_lean(4)
    p = prompts(4, seed=4)
    batched = run(model, "klass", p, cache="dual", refresh=refresh, frozen=UNEVEN4)
    peeks = [b for kind, b, _ in model.calls if kind == "peek"]
    assert sum(peeks) == 5 and max(peeks) < 4
    for i in range(4):
        single = run(model, "klass", p[i : i + 1], cache="dual", refresh=refresh, frozen={0: UNEVEN4[i]})
        assert torch.equal(batched.tokens[i], single.tokens[0])
        assert int(batched.nfe[i]) == int(single.nfe[0])


@pytest.mark.parametrize("mode", ["prefix", "dual"])
def test_early_exit_with_a_cache(mode):
    """The answer slots are read-only queries of every cached step: with a refresh every step early exit decides as
    without a cache, and a batch still equals its rows."""
    model = tiny_lean(5)
    p = prompts(3, seed=5)
    answer = torch.arange(13, 15).expand(3, 2)

    def go(rows, **kw):
        return run(model, "confidence", p[rows], early_exit=EarlyExit(2.0, answer[: len(rows)]), **kw)

    plain, every = go([0, 1, 2]), go([0, 1, 2], cache=mode, refresh=1)
    assert torch.equal(plain.tokens, every.tokens) and torch.equal(plain.state.exited, every.state.exited)
    assert plain.state.exited.any() and int(plain.nfe.min()) < GEN
    batched = go([0, 1, 2], cache=mode)
    for i in range(3):
        single = go([i], cache=mode)
        assert torch.equal(batched.tokens[i], single.tokens[0]) and int(batched.nfe[i]) == int(single.nfe[0])


def test_kv_cache_keep_compacts_rows_in_place():
    cache = KVCache([torch.arange(8.0).view(4, 2)], length=1)
    storage = cache.tensors[0].data_ptr()
    cache.keep(torch.tensor([1, 3]))
    assert cache.tensors[0][:2].tolist() == [[2.0, 3.0], [6.0, 7.0]] and cache.tensors[0].data_ptr() == storage
    assert cache.capacity == 4 and cache.nbytes == 8 * 4


def test_cache_errors():
    model = tiny_lean()
    p = prompts(1)
    with pytest.raises(ConfigError, match="decode.cache='paged'"):
        run(model, "confidence", p, cache="paged")
    with pytest.raises(ConfigError, match="cache_refresh"):
        run(model, "confidence", p, cache="dual", refresh=-1)
    with pytest.raises(ConfigError, match="MixingDenoiser has none"):
        run(MixingDenoiser(vocab=VOCAB, length=15), "confidence", p, cache="dual")


def test_config_keys_reach_decode(toy_plugins):
    """decode.cache / cache_refresh / capture are run-config keys, checked when resolved, and a run passes them to
    decode(): the toy domain's denoiser has no KV cache, so asking for one stops the run with a ConfigError."""
    from mdsample import sample
    from mdsample.config import resolve_config
    from mdsample.errors import UnknownChoiceError

    cfg = resolve_config("toy", "confidence", dotlist=["decode.cache=dual", "decode.cache_refresh=2",
                                                       "decode.capture=off"])
    assert (cfg.decode.cache, cfg.decode.cache_refresh, cfg.decode.capture) == ("dual", 2, "off")
    assert resolve_config("toy", "confidence").decode.cache == "none"
    assert resolve_config("toy", "confidence", dotlist=["decode.capture=on"]).decode.capture == "on"  # YAML: True
    with pytest.raises(UnknownChoiceError, match="decode.cache"):
        resolve_config("toy", "confidence", dotlist=["decode.cache=paged"])
    with pytest.raises(UnknownChoiceError, match="decode.capture"):
        resolve_config("toy", "confidence", dotlist=["decode.capture=always"])
    with pytest.raises(ConfigError, match="cache_refresh"):
        resolve_config("toy", "confidence", dotlist=["decode.cache_refresh=-1"])
    with pytest.raises(ConfigError, match="needs a denoiser with a KV cache"):
        sample("toy", "confidence", 2, device="cpu", progress=False, decode={"cache": "dual"})
