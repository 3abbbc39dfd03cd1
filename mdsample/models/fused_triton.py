"""Triton kernels of the fused ops (models/fused.py), one launch each; imported only on CUDA (and by the tests under
Triton's interpreter), since the CPU builds of torch ship no Triton.

Every kernel loads the model-dtype inputs, computes in float32 (the rotary embedding in its table's float32) and
rounds once when it stores. Rows are the leading dimensions flattened; the last dimension must be contiguous.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _add_rms_norm_kernel(x_ptr, res_ptr, w_ptr, out_ptr, sum_ptr, n, eps, x_row, res_row,
                         HAS_RESIDUAL: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inside = cols < n
    s = tl.load(x_ptr + row * x_row + cols, mask=inside, other=0.0)
    if HAS_RESIDUAL:
        s = (s.to(tl.float32) + tl.load(res_ptr + row * res_row + cols, mask=inside, other=0.0).to(tl.float32))
        s = s.to(sum_ptr.dtype.element_ty)
        tl.store(sum_ptr + row * n + cols, s, mask=inside)
    s = s.to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=0) / n + eps)
    w = tl.load(w_ptr + cols, mask=inside, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * n + cols, (s * rstd * w).to(out_ptr.dtype.element_ty), mask=inside)


def _rows(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``x`` as ``[rows, last]`` and its row stride (a view where possible)."""
    flat = x.reshape(-1, x.shape[-1])
    if flat.stride(-1) != 1:
        flat = flat.contiguous()
    return flat, flat.stride(0)


def add_rms_norm(x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor,
                 eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(RMSNorm(x + residual) * weight, x + residual); see fused.add_rms_norm_reference."""
    n = x.shape[-1]
    flat, x_row = _rows(x)
    res, res_row = _rows(residual) if residual is not None else (flat, x_row)
    out = torch.empty(flat.shape, dtype=x.dtype, device=x.device)
    total = torch.empty_like(out) if residual is not None else flat
    if flat.shape[0]:
        block = triton.next_power_of_2(n)
        _add_rms_norm_kernel[(flat.shape[0],)](flat, res, weight, out, total, n, eps, x_row, res_row,
                                               HAS_RESIDUAL=residual is not None, BLOCK=block,
                                               num_warps=min(max(block // 256, 1), 16))
    return out.view(x.shape), (x if residual is None else total.view(x.shape))


@triton.jit
def _rotate(x, cos, sin, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    """Rotate the pairs (2j, 2j + 1) of each row of ``x[BLOCK_H, 2 BLOCK_D]`` by cos/sin ``[1, BLOCK_D]``, in the
    table's precision; the tile is loaded and stored whole (contiguous, vectorised), the pairs split in registers."""
    even, odd = tl.split(tl.reshape(x, (BLOCK_H, BLOCK_D, 2)))
    even, odd = even.to(cos.dtype), odd.to(cos.dtype)
    rotated = tl.join(even * cos - odd * sin, even * sin + odd * cos)
    return tl.reshape(rotated, (BLOCK_H, 2 * BLOCK_D))


@triton.jit
def _rotary_kernel(x_ptr, table_ptr, pos_ptr, out_ptr, length, heads, half, x_batch, x_pos, x_head, pos_batch,
                   table_row, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    token = tl.program_id(0).to(tl.int64)
    b, i = token // length, token % length
    position = tl.load(pos_ptr + b * pos_batch + i).to(tl.int64)
    pairs = tl.arange(0, BLOCK_D)
    cos = tl.load(table_ptr + position * table_row + pairs, mask=pairs < half, other=0.0)[None, :]
    sin = tl.load(table_ptr + position * table_row + half + pairs, mask=pairs < half, other=0.0)[None, :]
    h = (tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H))[:, None].to(tl.int64)
    cols = tl.arange(0, 2 * BLOCK_D)[None, :]
    inside = (h < heads) & (cols < 2 * half)
    x = tl.load(x_ptr + b * x_batch + i * x_pos + h * x_head + cols, mask=inside, other=0.0)
    out = _rotate(x, cos, sin, BLOCK_H, BLOCK_D)
    tl.store(out_ptr + (token * heads + h) * (2 * half) + cols, out.to(out_ptr.dtype.element_ty), mask=inside)


def _rotary_inputs(x: torch.Tensor, table: torch.Tensor,
                   positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x[B, L, heads, dim]`` with a contiguous last dimension, the table contiguous, ``positions`` as ``[B or 1, L]``
    with a contiguous last dimension: what the rotary kernels index."""
    if x.stride(-1) != 1:
        x = x.contiguous()
    positions = positions.expand(positions.shape[0], x.shape[1])
    if positions.stride(-1) != 1:
        positions = positions.contiguous()
    return x, table.contiguous(), positions


def rotary(x: torch.Tensor, table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x[B, L, heads, dim]`` (any strides but a contiguous last dimension, e.g. the q and k
    heads of the fused qkv output) at ``positions[B or 1, L]``; see fused.rotary_reference."""
    b, length, heads, dim = x.shape
    x, table, positions = _rotary_inputs(x, table, positions)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if out.numel():
        block_h = min(triton.next_power_of_2(heads), 16)
        _rotary_kernel[(b * length, triton.cdiv(heads, block_h))](
            x, table, positions, out, length, heads, dim // 2, x.stride(0), x.stride(1), x.stride(2),
            positions.stride(0) if positions.shape[0] > 1 else 0, table.stride(0),
            BLOCK_H=block_h, BLOCK_D=triton.next_power_of_2(dim // 2), num_warps=4)
    return out


@triton.jit
def _rotary_store_kernel(x_ptr, table_ptr, pos_ptr, slot_ptr, q_ptr, k_ptr, v_ptr, length, heads, kv_heads, half,
                         x_batch, x_pos, x_head, pos_batch, slot_batch, slot_pos, table_row, k_batch, k_head, k_slot,
                         v_batch, v_head, v_slot, BLOCK_H: tl.constexpr, BLOCK_D: tl.constexpr):
    token = tl.program_id(0).to(tl.int64)
    b, i = token // length, token % length
    position = tl.load(pos_ptr + b * pos_batch + i).to(tl.int64)
    slot = tl.load(slot_ptr + b * slot_batch + i * slot_pos).to(tl.int64)
    pairs = tl.arange(0, BLOCK_D)
    cos = tl.load(table_ptr + position * table_row + pairs, mask=pairs < half, other=0.0)[None, :]
    sin = tl.load(table_ptr + position * table_row + half + pairs, mask=pairs < half, other=0.0)[None, :]
    h = (tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H))[:, None].to(tl.int64)
    cols = tl.arange(0, 2 * BLOCK_D)[None, :]
    inside = (h < heads + 2 * kv_heads) & (cols < 2 * half)
    x = tl.load(x_ptr + b * x_batch + i * x_pos + h * x_head + cols, mask=inside, other=0.0)
    rotated = _rotate(x, cos, sin, BLOCK_H, BLOCK_D)
    q_dst = q_ptr + (token * heads + h) * (2 * half) + cols
    tl.store(q_dst, rotated.to(q_ptr.dtype.element_ty), mask=inside & (h < heads))
    k_dst = k_ptr + b * k_batch + (h - heads) * k_head + slot * k_slot + cols
    tl.store(k_dst, rotated.to(k_ptr.dtype.element_ty), mask=inside & (h >= heads) & (h < heads + kv_heads))
    v_dst = v_ptr + b * v_batch + (h - heads - kv_heads) * v_head + slot * v_slot + cols
    tl.store(v_dst, x, mask=inside & (h >= heads + kv_heads))


def rotary_store(qkv: torch.Tensor, table: torch.Tensor, positions: torch.Tensor, heads: int, keys: torch.Tensor,
                 values: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
    """The rotated queries of ``qkv[B, L, heads + 2 kv_heads, dim]``; its rotated keys and its values go into
    ``keys`` / ``values[B, kv_heads, T, dim]`` at ``slots[B, L]``; see fused.rotary_store_reference."""
    b, length, total, dim = qkv.shape
    kv_heads = keys.shape[1]
    qkv, table, positions = _rotary_inputs(qkv, table, positions)
    q = torch.empty(b, length, heads, dim, dtype=qkv.dtype, device=qkv.device)
    if q.numel():
        block_h = min(triton.next_power_of_2(total), 16)
        _rotary_store_kernel[(b * length, triton.cdiv(total, block_h))](
            qkv, table, positions, slots, q, keys, values, length, heads, kv_heads, dim // 2,
            qkv.stride(0), qkv.stride(1), qkv.stride(2), positions.stride(0) if positions.shape[0] > 1 else 0,
            slots.stride(0), slots.stride(1), table.stride(0), keys.stride(0), keys.stride(1), keys.stride(2),
            values.stride(0), values.stride(1), values.stride(2),
            BLOCK_H=block_h, BLOCK_D=triton.next_power_of_2(dim // 2), num_warps=4)
    return q


@triton.jit
def _swiglu_kernel(x_ptr, out_ptr, n, x_row, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    inside = cols < n
    gate = tl.load(x_ptr + row * x_row + cols, mask=inside, other=0.0).to(tl.float32)
    up = tl.load(x_ptr + row * x_row + n + cols, mask=inside, other=0.0).to(tl.float32)
    out = gate / (1.0 + tl.exp(-gate)) * up
    tl.store(out_ptr + row * n + cols, out.to(out_ptr.dtype.element_ty), mask=inside)


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up of ``gate_up[..., 2I]``; see fused.swiglu_reference."""
    n = gate_up.shape[-1] // 2
    flat, row = _rows(gate_up)
    out = torch.empty(flat.shape[0], n, dtype=gate_up.dtype, device=gate_up.device)
    if out.numel():
        block = min(triton.next_power_of_2(n), 2048)
        _swiglu_kernel[(flat.shape[0], triton.cdiv(n, block))](flat, out, n, row, BLOCK=block, num_warps=8)
    return out.view(*gate_up.shape[:-1], n)
