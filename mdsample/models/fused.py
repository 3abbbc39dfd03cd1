"""The native modules' elementwise work per layer as fused ops: RMSNorm with the residual add, the rotary embedding
of q and k together (under a KV store together with writing the keys and values into it), and SwiGLU's product.

Why: at batch 1 a step of an 8B model is bound by kernel launches, not by its weight reads. In eager PyTorch the
rotary embedding alone is three kernels per layer (to float32, the complex product, back to the model dtype), each
RMSNorm and residual add one or more, and SwiGLU two; on an H100 the eager forward was 1.27x a rotary-free SDPA module
(BENCHMARKS.md, "Performance (issue 10)") while torch.compile, which fuses them, closed the gap. Each op here is one
kernel on CUDA. Under the dual cache a step's layer also wrote its fresh keys and values into the cache with two
scatters, 64 kernels per LLaDA-8B step that cost 0.30 ms of a 5.4 ms batch-1 step on an H200 (benchmarks/rule_step.py
``--profile``): ``rotary_store`` writes them from the rotary kernel itself.

Each op has a plain-torch reference (``*_reference``): the math the modules ran before, used on the CPU, under
torch.compile and as the test oracle. The CUDA fast path is a Triton kernel (models/fused_triton.py) rather than a
small torch.compile'd function because a compiled function pays dynamo's guard evaluation on every call (three calls
per layer) and recompiles per new shape (every batch bucket and window), while a Triton kernel is a plain launch whose
arithmetic is written out: float32 inside, one rounding to the model dtype at the end. Under torch.compile (the
``decode.compile`` forward) the references run instead, because inductor fuses them into its own kernels.

Numerics: the rotary angles, cos / sin tables and products are float32 (float64 for a float64 model), as LLaDA's
reference code computes them; the kernels read the model-dtype inputs, compute in float32 and round once, where the
eager references round after each op (the residual sum is rounded before it is normed, as in the references). So in
fp32 kernels and references agree to float32 rounding, and in bf16 to a unit or two in the last place
(tests/models/test_fused.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from mdsample.core.triton_check import triton_available

_enabled = True


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the references on every device (benchmarks/native_forward.py's unfused row)."""
    global _enabled
    before, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = before


def uses_kernels(x: torch.Tensor, *others: torch.Tensor | None) -> bool:
    """Whether an op on ``x`` (and ``others``) runs as a Triton kernel: CUDA, half / bf16 / fp32, not while
    torch.compile traces, and nothing to differentiate (the kernels have no backward; training takes the references).
    """
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, *others))
    return (_enabled and x.is_cuda and x.dtype in (torch.float16, torch.bfloat16, torch.float32) and not grad
            and not torch.compiler.is_compiling() and triton_available())


def rotary_table(dim: int, theta: float, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``[length, dim]``: cos of position * freq_j in columns ``j < dim / 2``, sin in the rest (freq_j =
    theta^(-2j / dim)), in ``dtype`` (float32 or float64). Taken from ``torch.polar``, so that they are exactly the
    unit complex rotations exp(i * angle) of a complex-product rotary embedding (tests/models/test_fused.py)."""
    exponents = torch.arange(0, dim, 2, device=device, dtype=dtype) / dim
    angles = torch.outer(torch.arange(length, device=device, dtype=dtype), 1.0 / theta**exponents)
    rotations = torch.polar(torch.ones_like(angles), angles)
    return torch.cat([rotations.real, rotations.imag], dim=-1)


def add_rms_norm_reference(x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor,
                           eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(RMSNorm(s) * weight, s) with s = x + residual (s = x without a residual)."""
    s = x if residual is None else x + residual
    return F.rms_norm(s, (s.shape[-1],), weight, eps), s


def rotary_reference(x: torch.Tensor, table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x[B, L, heads, dim]`` in the pair-interleaved layout (pairs (2j, 2j + 1) rotated by
    angle position * freq_j), at ``positions[B or 1, L]`` of ``table`` (``rotary_table``), computed in its dtype."""
    half = table.shape[-1] // 2
    rows = table[positions].unsqueeze(2)
    cos, sin = rows[..., :half], rows[..., half:]
    even, odd = x.to(table.dtype).unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).to(x.dtype)


def rotary_store_reference(qkv: torch.Tensor, table: torch.Tensor, positions: torch.Tensor, heads: int,
                           keys: torch.Tensor, values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """The rotated queries ``[B, L, heads, dim]`` of ``qkv[B, L, heads + 2 kv_heads, dim]``; its keys (rotated) and
    values are written into ``keys`` / ``values[B, kv_heads, T, dim]`` at ``slots[B, L]``."""
    kv_heads = keys.shape[1]
    qk = rotary_reference(qkv[:, :, : heads + kv_heads], table, positions)
    where = slots[:, None, :, None].expand(-1, kv_heads, -1, qkv.shape[-1])
    keys.scatter_(2, where, qk[:, :, heads:].transpose(1, 2))
    values.scatter_(2, where, qkv[:, :, heads + kv_heads :].transpose(1, 2))
    return qk[:, :, :heads]


def swiglu_reference(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up of ``gate_up[..., 2I]`` (gate first)."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate).mul_(up)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(RMSNorm(x + residual) * weight, x + residual) in one kernel on CUDA (``add_rms_norm_reference``)."""
    if uses_kernels(x, residual, weight):
        from mdsample.models import fused_triton

        return fused_triton.add_rms_norm(x, residual, weight, eps)
    return add_rms_norm_reference(x, residual, weight, eps)


def rotary(x: torch.Tensor, table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of q and k heads ``x[B, L, heads, dim]`` in one kernel on CUDA (``rotary_reference``)."""
    if uses_kernels(x):
        from mdsample.models import fused_triton

        return fused_triton.rotary(x, table, positions)
    return rotary_reference(x, table, positions)


def rotary_store(qkv: torch.Tensor, table: torch.Tensor, positions: torch.Tensor, heads: int, keys: torch.Tensor,
                 values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of a fused qkv's q and k heads with the keys and values written into a KV store, in one
    kernel on CUDA (``rotary_store_reference``). ``slots[B or 1, L]``."""
    slots = slots.expand(qkv.shape[0], qkv.shape[1])
    if uses_kernels(qkv, keys, values) and keys.stride(-1) == values.stride(-1) == 1:
        from mdsample.models import fused_triton

        return fused_triton.rotary_store(qkv, table, positions, heads, keys, values, slots)
    return rotary_store_reference(qkv, table, positions, heads, keys, values, slots)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up in one kernel on CUDA (``swiglu_reference``)."""
    if uses_kernels(gate_up):
        from mdsample.models import fused_triton

        return fused_triton.swiglu(gate_up)
    return swiglu_reference(gate_up)
