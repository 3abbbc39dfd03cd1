"""The arithmetic of the text-throughput sweep (benchmarks/text_throughput.py), kept free of torch so that the
table renderer (benchmarks/throughput_tables.py) and the tests read it without a GPU stack: the roofline of a step,
the time a measurement is expected to take (the ``--budget-s`` guard), the order of the measurements and the targets.

Roofline of one decode step (issue 18): ``max(weight-read time, FLOPs / measured bf16 GEMM peak)``, where

* weight-read time = parameter bytes (every parameter, the embedding included, as the weight-read floor has always
  been counted) / the measured device-to-device copy bandwidth;
* FLOPs = 2 * P * T  +  4 * layers * heads * head_dim * T * S, with
  - P the parameters of the linear layers a token passes through: per layer the fused q/k/v projection
    (hidden * (heads + 2 * kv_heads) * head_dim), the output projection (heads * head_dim * hidden), the fused
    gate/up (2 * hidden * intermediate) and the down projection (intermediate * hidden), plus the output head
    (vocab * hidden; the embedding is a lookup, not a GEMM); biases and norms are left out (under 0.01%);
  - T the query tokens the step computes: B * L for an uncached step and for the refresh at the first step of each
    block (L = prompt + generation), B * (gen - k * block) for a prefix-cache step in block k (the active block and
    everything after it), B * W for a dual-cache step (W = the loop's window: one block, two for a rule with history,
    KLASS, except under the dual cache, where it is one block and such a rule ``peek``s: B * block more queries at
    the first step of every block but the first, core/loop.py); Dream's cached calls also compute each window
    position's left neighbour (its logits are the neighbour's output), W more per row;
  - S the attended length, L in every mode (the caches attend to the whole stored canvas in place), and the 4 =
    2 FLOPs per multiply-add times two products, QK^T and PV.

The step times measured are steady-state means over the second half of a decode, which includes the refresh steps
of its blocks; the roofline is averaged over the same steps. ``roofline_kv_ms`` also charges a cached step the read
of the stored keys/values (B * layers * 2 * kv_heads * head_dim * L elements): not part of the target's roofline, it
says how much of a large batch's gap is the cache read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_STEP_MS = {"auto": 15.0, "off": 30.0}
"""Launch-bound cost of a step (ms) assumed for a mode not measured yet (an H100 measured 10-14 captured and 20-22
eager at batch 1 on the 8B shape); only the ``--budget-s`` guard's first estimates use it."""
MARGINAL_SLOWDOWN = 1.5
"""Each millisecond of roofline a measurement has beyond the nearest measured one is expected to cost this many
(large GEMMs reach about 2/3 of the peak); used by the budget guard."""
DEFAULT_REFERENCE_STEP_MS = 100.0
"""Per-step cost assumed for a reference loop not measured yet (an H100 measured 55-82 ms on Fast-dLLM's model)."""


@dataclass(frozen=True)
class Shape:
    """The dimensions the FLOP count reads (names as in models/lean.py's LeanConfig)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    head_dim: int | None = None

    @classmethod
    def of(cls, config: dict) -> Shape:
        return cls(**{k: config.get(k) for k in cls.__dataclass_fields__ if k in config})

    @property
    def dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def linear_params(self) -> int:
        """Parameters of the GEMMs every computed token goes through (layers and output head)."""
        h, d = self.hidden_size, self.dim
        attention = h * (self.num_heads + 2 * self.num_kv_heads) * d + self.num_heads * d * h
        layer = attention + 3 * h * self.intermediate_size
        return self.num_layers * layer + self.vocab_size * h


@dataclass(frozen=True)
class Device:
    """What the run measured of the device: bytes/s a copy moves, bf16 GEMM FLOP/s, and the weights' bytes."""

    copy_bytes_per_s: float
    gemm_flops_per_s: float
    weight_bytes: int
    element_bytes: int = 2


def step_tokens(cache: str, batch: int, prompt: int, gen: int, block: int, window: int, step: int, steps: int,
                shifted: bool, refresh_every: int = 0, peek: bool = False) -> tuple[int, bool]:
    """(query tokens computed, whether the step reads the stored keys/values) for step ``step`` of a decode of
    ``steps`` steps over ``gen // block`` blocks; ``shifted``: Dream's left-neighbour queries in cached calls;
    ``refresh_every``: decode.cache_refresh (a full forward also every that many steps into a block); ``peek``: a
    dual-cache rule with history, whose first step of each block after the first also peeks at that block."""
    length = prompt + gen
    blocks = max(gen // block, 1)
    k = step * blocks // steps
    into_block = step - -(-k * steps // blocks)
    refresh = cache == "none" or into_block == 0 or (refresh_every > 0 and into_block % refresh_every == 0)
    if refresh:
        if peek and cache == "dual" and into_block == 0 and k > 0:
            return batch * (length + block * (2 if shifted else 1)), True
        return batch * length, False
    queries = gen - k * block if cache == "prefix" else window
    return batch * (queries + (window if shifted else 0)), True


def step_cost(shape: Shape, device: Device, cache: str, batch: int, prompt: int, gen: int, block: int, window: int,
              step: int, steps: int, shifted: bool, refresh_every: int = 0, peek: bool = False) -> dict:
    """FLOPs and the roofline terms (ms) of one step."""
    tokens, reads_cache = step_tokens(cache, batch, prompt, gen, block, window, step, steps, shifted, refresh_every,
                                      peek)
    length = prompt + gen
    flops = 2 * shape.linear_params * tokens + 4 * shape.num_layers * shape.num_heads * shape.dim * tokens * length
    kv_bytes = batch * shape.num_layers * 2 * shape.num_kv_heads * shape.dim * length * device.element_bytes
    weight_ms = device.weight_bytes / device.copy_bytes_per_s * 1e3
    kv_ms = kv_bytes / device.copy_bytes_per_s * 1e3 if reads_cache else 0.0
    compute_ms = flops / device.gemm_flops_per_s * 1e3
    return dict(flops=flops, weight_read_ms=weight_ms, kv_read_ms=kv_ms, compute_ms=compute_ms,
                roofline_ms=max(weight_ms, compute_ms), roofline_kv_ms=max(weight_ms + kv_ms, compute_ms))


def roofline(shape: Shape, device: Device, cache: str, batch: int, prompt: int, gen: int, block: int, window: int,
             steps: int, shifted: bool, first: int | None = None, refresh_every: int = 0, peek: bool = False) -> dict:
    """The step costs averaged over steps ``first``..``steps - 1`` (default: the second half, as ``step_ms``)."""
    first = steps // 2 if first is None else first
    costs = [step_cost(shape, device, cache, batch, prompt, gen, block, window, i, steps, shifted, refresh_every,
                       peek) for i in range(first, steps)]
    mean = {k: sum(c[k] for c in costs) / len(costs) for k in costs[0]}
    return dict(flops_per_step=mean.pop("flops"), **mean)


def estimate_step_ms(roof_ms: float, capture: str, measured: list[tuple[float, float]]) -> float:
    """Expected wall-clock per step of a decode whose roofline (with the cache read) is ``roof_ms``, from the
    ``measured`` (roofline ms, whole-decode ms per step) of runs in the same mode: the nearest in roofline, plus
    ``MARGINAL_SLOWDOWN`` times the extra roofline; never below it (a larger step is not faster)."""
    if not measured:
        return MARGINAL_SLOWDOWN * roof_ms + DEFAULT_STEP_MS.get(capture, DEFAULT_STEP_MS["off"])
    near_roof, near_ms = min(measured, key=lambda m: abs(math.log(max(m[0], 1e-9) / max(roof_ms, 1e-9))))
    return near_ms + MARGINAL_SLOWDOWN * max(0.0, roof_ms - near_roof)


@dataclass(frozen=True)
class Spec:
    """One measurement: a decode of ours (``mdsample``), a reference loop (``reference``, ``rule`` = the loop,
    ``model`` = the model it calls), one eager forward (``forward``) or a kernel profile (``profile``)."""

    kind: str
    batch: int
    prompt: int
    rule: str | None = None
    cache: str | None = None
    capture: str | None = None
    model: str | None = None

    def key(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


CORE_RULES = ("confidence", "klass")
"""The plain loop and KLASS: every target's denominator or subject, so they are measured first."""
REFERENCE_LOOPS = ("llada_generate", "klass", "fast_dllm_prefix", "fast_dllm_dual")


def plan(rules: list[str], caches: list[str], captures: list[str], batches: list[int], prompts: list[int],
         detail_batches: list[int], sweep_rules: list[str], sweep_caches: list[str], references: list[str],
         profile: bool) -> list[Spec]:
    """Every measurement of a run, most needed first, so that the budget guard drops the least needed.

    Detail cells (``detail_batches`` at the first prompt) get every rule in every cache and capture mode; the other
    cells of batches x prompts (the batch sweep) get ``sweep_rules`` x ``sweep_caches``, captured. Order: (1) the
    plain loop and KLASS in every mode at the detail cells, with the forward row, and the reference loops after
    batch 1; (2) the plain loop across the sweep; (3) profiles; (4) the other rules at the detail cells, captured
    before eager, the dual cache (the fastest mode) before the uncached and the prefix cache; (5) the other sweep rules
    across the sweep. The guard skips what does not fit and goes on, so a cheap measurement late in the list still
    runs when an expensive one before it did not.
    """
    first, capture = prompts[0], captures[0]
    detail = [b for b in batches if b in detail_batches]
    sweep = [(b, p) for p in prompts for b in batches if not (p == first and b in detail)]
    core = [r for r in CORE_RULES if r in rules]
    out: list[Spec] = []
    for b in detail:
        out.append(Spec("forward", b, first))
        out += [Spec("mdsample", b, first, r, c, cap) for cap in captures for c in caches for r in core]
        if b == 1:
            out += [Spec("reference", 1, first, loop, model=m) for m in references for loop in REFERENCE_LOOPS]
    lead = [r for r in sweep_rules if r == "confidence"]
    out += [Spec("mdsample", b, p, r, c, capture) for b, p in sweep for r in lead for c in sweep_caches]
    if profile:  # the plain loop where each target is checked, and KLASS's dual-cache step next to it
        out += [Spec("profile", b, first, "confidence", c, capture) for b in detail for c in ("none", "dual")
                if c in caches]
        out += [Spec("profile", b, first, "klass", "dual", capture) for b in detail if "klass" in core
                and "dual" in caches]
        if sweep:
            b, p = max(sweep, key=lambda cell: cell[0] * cell[1])
            out += [Spec("profile", b, p, "confidence", c, capture) for c in sweep_caches]
    others = [r for r in rules if r not in core]
    by_use = sorted(caches, key=lambda c: ("dual", "none", "prefix").index(c))  # the fastest mode first
    out += [Spec("mdsample", b, first, r, c, cap) for cap in captures for c in by_use for b in detail for r in others]
    out += [Spec("mdsample", b, p, r, c, capture) for b, p in sweep for r in sweep_rules if r not in lead
            for c in sweep_caches]
    return out


def _find(rows: list[dict], **key) -> dict | None:
    return next((r for r in rows if r.get("step_ms") and all(r.get(k) == v for k, v in key.items())), None)


def _check(target: str, preset: str, cell: str, value: float | None, limit: float, higher_is_better: bool = False,
           detail: str = "") -> dict:
    met = None if value is None else (value >= limit if higher_is_better else value <= limit)
    return dict(target=target, preset=preset, cell=cell, value=value, limit=limit, met=met, detail=detail,
                higher_is_better=higher_is_better)


def targets(rows: list[dict]) -> list[dict]:
    """Every issue-18 target the rows allow to check, one entry per cell (``met`` None where a side is missing).

    * batch-1 step <= 1.3x the weight-read floor: the fastest plain-loop (confidence) row of the cell;
    * batch 8-64 step <= 1.6x the roofline: the fastest plain-loop row of the cell, against its own mode's roofline;
    * every rule's step <= 1.03x the plain loop's at batch 1 and 8, same cache and capture mode;
    * KLASS peak memory <= 1.05x the plain loop's, same cell and mode;
    * >= 6x the tokens/s of Fast-dLLM's best loop on its own model (batch 1): the fastest plain-loop row.
    """
    ours = [r for r in rows if r.get("kind") == "mdsample" and r.get("step_ms")]
    out: list[dict] = []
    for preset, batch, prompt in sorted({(r["preset"], r["batch"], r["prompt"]) for r in ours}):
        cell = f"b{batch} p{prompt}"
        here = [r for r in ours if (r["preset"], r["batch"], r["prompt"]) == (preset, batch, prompt)]
        plain = [r for r in here if r["rule"] == "confidence"]
        fastest = min(plain, key=lambda r: r["step_ms"], default=None)
        mode = "" if fastest is None else f"{fastest['cache']}/{fastest['capture']}"
        if batch == 1:
            value = None if fastest is None else fastest["step_ms"] / fastest["floor_ms"]
            out.append(_check("b1 step / weight-read floor", preset, cell, value, 1.3, detail=mode))
            refs = [r for r in rows if r.get("kind") == "reference" and r.get("preset") == preset
                    and r.get("model") == "fast_dllm" and r.get("prompt") == prompt
                    and r["rule"] in ("fast_dllm_prefix", "fast_dllm_dual")]
            best = max(refs, key=lambda r: r["tokens_per_s"], default=None)
            if best is not None:
                value = None if fastest is None else fastest["tokens_per_s"] / best["tokens_per_s"]
                out.append(_check("tokens/s / Fast-dLLM best loop (own model)", preset, cell, value, 6.0, True,
                                  f"{mode} vs {best['rule']}"))
        else:
            value = None if fastest is None else fastest["step_ms"] / fastest["roofline_ms"]
            out.append(_check("b8-64 step / roofline", preset, cell, value, 1.6, detail=mode))
        for r in here:
            base = _find(plain, cache=r["cache"], capture=r["capture"])
            mode = f"{r['cache']}/{r['capture']}"
            if r["rule"] != "confidence" and batch in (1, 8):
                out.append(_check("rule step / plain loop step", preset, f"{cell} {r['rule']}",
                                  None if base is None else r["step_ms"] / base["step_ms"], 1.03, detail=mode))
            if r["rule"] == "klass" and r.get("peak_gb"):
                value = None if base is None or not base.get("peak_gb") else r["peak_gb"] / base["peak_gb"]
                working = "" if value is None or not base.get("working_gb") else \
                    f"; above the resident weights {r['working_gb'] / base['working_gb']:.2f}x"
                out.append(_check("KLASS peak / plain loop peak", preset, cell, value, 1.05, detail=mode + working))
    return out
