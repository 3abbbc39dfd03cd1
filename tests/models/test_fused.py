"""The fused ops (models/fused.py): the references equal the module math they replaced (CPU), and the Triton kernels
equal the references in fp32 and bf16 (CUDA; or on the CPU under Triton's interpreter, TRITON_INTERPRET=1, where
Triton is installed)."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from torch.nn import functional as F

from mdsample.models import fused

CUDA = torch.cuda.is_available()
TRITON_DEVICE = "cuda" if CUDA else "cpu"
triton_only = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or not (CUDA or os.environ.get("TRITON_INTERPRET") == "1"),
    reason="needs Triton and CUDA (or Triton's interpreter: TRITON_INTERPRET=1)")
cuda_only = pytest.mark.skipif(not CUDA, reason="needs CUDA")
# bf16: the kernels round once from float32, the references (eager bf16 ops) once per op: a unit or two in the last
# place of values up to ~10
TOLERANCES = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.bfloat16: dict(atol=2e-2, rtol=1.6e-2)}


def randn(*shape: int, dtype: torch.dtype = torch.float32, device: str = "cpu", seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).mul(2).to(device=device, dtype=dtype)


def test_add_rms_norm_reference_is_the_residual_add_then_rmsnorm():
    x, residual, weight = randn(2, 5, 48, seed=1), randn(2, 5, 48, seed=2), randn(48, seed=3)
    norm = torch.nn.RMSNorm(48, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(weight)
        normed, total = fused.add_rms_norm_reference(x, residual, weight, 1e-5)
        assert torch.equal(total, residual + x)
        assert torch.equal(normed, norm(residual + x))
        normed, total = fused.add_rms_norm_reference(x, None, weight, 1e-5)
        assert total is x and torch.equal(normed, norm(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rotary_reference_is_the_complex_product_in_float32(dtype):
    """The original module math: (x_2j + i x_2j+1) * exp(i * position * freq_j), in float32 (float64), cast back."""
    dim, theta = 16, 500000.0
    x = randn(2, 7, 5, dim, dtype=dtype)
    positions = torch.tensor([[0, 3, 4, 9, 10, 11, 30], [1, 1, 2, 2, 5, 6, 7]])
    real = torch.promote_types(dtype, torch.float32)
    inv_freq = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=real) / dim)
    angles = torch.outer(torch.arange(40, dtype=real), inv_freq)
    rotations = torch.polar(torch.ones_like(angles), angles)[positions].unsqueeze(2)
    pairs = torch.view_as_complex(x.to(real).unflatten(-1, (-1, 2)).contiguous())
    expected = torch.view_as_real(pairs * rotations).flatten(-2).to(dtype)
    table = fused.rotary_table(dim, theta, 40, x.device, real)
    assert table.dtype == real
    torch.testing.assert_close(fused.rotary_reference(x, table, positions), expected, atol=1e-6, rtol=1e-6)
    assert torch.equal(fused.rotary_reference(x, table, positions[:1]), fused.rotary_reference(
        x, table, positions[:1].expand(2, -1)))


def test_rotary_in_bf16_rotates_in_float32():
    """A bf16 input is rotated by float32 cos / sin and rounded once: equal to rotating its float32 copy."""
    x = randn(1, 4, 3, 8, dtype=torch.bfloat16)
    table = fused.rotary_table(8, 10000.0, 4, x.device, torch.float32)
    positions = torch.arange(4)[None]
    assert torch.equal(fused.rotary_reference(x, table, positions),
                       fused.rotary_reference(x.float(), table, positions).to(torch.bfloat16))


def test_swiglu_reference_is_silu_gate_times_up():
    gate_up = randn(3, 4, 2 * 24)
    assert torch.equal(fused.swiglu_reference(gate_up), F.silu(gate_up[..., :24]) * gate_up[..., 24:])


def test_the_ops_run_the_references_off_cuda():
    x, weight = randn(2, 3, 16), randn(16, seed=1)
    assert torch.equal(fused.add_rms_norm(x, x, weight, 1e-6)[0], fused.add_rms_norm_reference(x, x, weight, 1e-6)[0])
    assert torch.equal(fused.swiglu(x), fused.swiglu_reference(x))


@triton_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_residual", [True, False])
def test_add_rms_norm_kernel_equals_the_reference(dtype, with_residual):
    from mdsample.models import fused_triton

    x, residual = randn(3, 7, 200, dtype=dtype, device=TRITON_DEVICE, seed=1), randn(3, 7, 200, dtype=dtype,
                                                                                       device=TRITON_DEVICE, seed=2)
    weight = randn(200, dtype=dtype, device=TRITON_DEVICE, seed=3)
    residual = residual if with_residual else None
    normed, total = fused_triton.add_rms_norm(x, residual, weight, 1e-5)
    want_normed, want_total = fused.add_rms_norm_reference(x, residual, weight, 1e-5)
    torch.testing.assert_close(total, want_total, **TOLERANCES[dtype])
    torch.testing.assert_close(normed, want_normed, **TOLERANCES[dtype])
    assert normed.dtype == total.dtype == dtype


@triton_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("per_row", [True, False])
def test_rotary_kernel_equals_the_reference_on_the_qk_heads_of_a_fused_qkv(dtype, per_row):
    """The input is the q and k heads of a qkv output (a strided view), as the attention layer passes it."""
    from mdsample.models import fused_triton

    heads, kv_heads, dim = 6, 3, 32
    qkv = randn(2, 9, heads + 2 * kv_heads, dim, dtype=dtype, device=TRITON_DEVICE)
    qk = qkv[:, :, : heads + kv_heads]
    table = fused.rotary_table(dim, 500000.0, 64, qkv.device, torch.float32)
    positions = (torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(4)) if per_row
                 else torch.arange(5, 14)[None]).to(TRITON_DEVICE)
    got = fused_triton.rotary(qk, table, positions)
    torch.testing.assert_close(got, fused.rotary_reference(qk, table, positions), **TOLERANCES[dtype])
    assert got.dtype == dtype and got.is_contiguous()


def store_case(dtype: torch.dtype, device: str, slots_rows: int):
    """A fused qkv of 2 rows x 5 queries, a store of 12 slots (+ the spare) and the queries' slots."""
    heads, kv_heads, dim = 6, 3, 32
    qkv = randn(2, 5, heads + 2 * kv_heads, dim, dtype=dtype, device=device)
    keys = randn(2, kv_heads, 13, dim, dtype=dtype, device=device, seed=5)
    values = randn(2, kv_heads, 13, dim, dtype=dtype, device=device, seed=6)
    slots = torch.tensor([[3, 4, 5, 6, 12], [0, 2, 4, 8, 10]], device=device)[:slots_rows]
    positions = torch.tensor([[7, 8, 9, 10, 11], [1, 3, 5, 9, 11]], device=device)
    table = fused.rotary_table(dim, 500000.0, 64, qkv.device, torch.float32)
    return qkv, table, positions, heads, keys, values, slots


@pytest.mark.parametrize("slots_rows", [2, 1])
def test_rotary_store_reference_writes_rotated_keys_and_values_into_their_slots(slots_rows):
    qkv, table, positions, heads, keys, values, slots = store_case(torch.float32, "cpu", slots_rows)
    kv_heads = keys.shape[1]
    old_keys, old_values = keys.clone(), values.clone()
    q = fused.rotary_store_reference(qkv, table, positions, heads, keys, values, slots.expand(2, 5))
    rotated = fused.rotary_reference(qkv[:, :, : heads + kv_heads], table, positions)
    assert torch.equal(q, rotated[:, :, :heads])
    for b in range(2):
        for i, slot in enumerate(slots[min(b, slots_rows - 1)].tolist()):
            assert torch.equal(keys[b, :, slot], rotated[b, i, heads:])
            assert torch.equal(values[b, :, slot], qkv[b, i, heads + kv_heads :])
            old_keys[b, :, slot], old_values[b, :, slot] = keys[b, :, slot], values[b, :, slot]
    assert torch.equal(keys, old_keys) and torch.equal(values, old_values)  # no other slot changed
    keys2, values2 = store_case(torch.float32, "cpu", slots_rows)[4:6]
    assert torch.equal(fused.rotary_store(qkv, table, positions, heads, keys2, values2, slots), q)  # CPU: reference
    assert torch.equal(keys2, keys) and torch.equal(values2, values)


@triton_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("slots_rows", [2, 1])
def test_rotary_store_kernel_equals_the_reference(dtype, slots_rows):
    """Values are copied bit for bit; queries and keys are bit for bit the rotary kernel's (the arithmetic the
    uncached forward runs), which is the reference up to float32 rounding."""
    from mdsample.models import fused_triton

    qkv, table, positions, heads, keys, values, slots = store_case(dtype, TRITON_DEVICE, slots_rows)
    want_keys, want_values = keys.clone(), values.clone()
    want = fused.rotary_store_reference(qkv, table, positions, heads, want_keys, want_values, slots.expand(2, 5))
    got = fused_triton.rotary_store(qkv, table, positions, heads, keys, values, slots.expand(2, 5))
    assert torch.equal(values, want_values)
    torch.testing.assert_close(got, want, **TOLERANCES[dtype])
    torch.testing.assert_close(keys, want_keys, **TOLERANCES[dtype])
    rotated = fused_triton.rotary(qkv[:, :, : heads + keys.shape[1]], table, positions)
    assert torch.equal(got, rotated[:, :, :heads])
    index = slots.expand(2, 5)[:, None, :, None].expand(-1, keys.shape[1], -1, keys.shape[-1])
    assert torch.equal(keys.gather(2, index), rotated[:, :, heads:].transpose(1, 2))


@triton_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_swiglu_kernel_equals_the_reference(dtype):
    from mdsample.models import fused_triton

    gate_up = randn(2, 5, 2 * 3000, dtype=dtype, device=TRITON_DEVICE)  # two column blocks, the second partial
    torch.testing.assert_close(fused_triton.swiglu(gate_up), fused.swiglu_reference(gate_up), **TOLERANCES[dtype])


@cuda_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_ops_take_the_kernels_on_cuda_and_match_the_references(dtype):
    """The public ops dispatch to the kernels on CUDA (not under ``fused.disabled()``) and agree with them."""
    x, residual = randn(4, 64, dtype=dtype, device="cuda", seed=1), randn(4, 64, dtype=dtype, device="cuda", seed=2)
    weight = randn(64, dtype=dtype, device="cuda", seed=3)
    fast = fused.add_rms_norm(x, residual, weight, 1e-6)
    with fused.disabled():
        slow = fused.add_rms_norm(x, residual, weight, 1e-6)
    for got, want in zip(fast, slow, strict=True):
        torch.testing.assert_close(got, want, **TOLERANCES[dtype])
    from mdsample.models import fused_triton

    assert torch.equal(fast[0], fused_triton.add_rms_norm(x, residual, weight, 1e-6)[0])


@cuda_only
def test_ops_to_differentiate_take_the_references_on_cuda():
    """The kernels have no backward: with a weight that requires grad the norm's gradient still reaches it."""
    x = randn(4, 64, device="cuda", seed=1)
    weight = randn(64, device="cuda", seed=3).requires_grad_()
    assert not fused.uses_kernels(x, None, weight) and fused.uses_kernels(x, None, weight.detach())
    fused.add_rms_norm(x, None, weight, 1e-6)[0].sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert fused.uses_kernels(x, None, weight)


@triton_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_native_module_with_the_kernels_matches_its_unfused_forward(dtype, monkeypatch):
    """The whole eager forward, and a cached call against its KV cache, with the kernels against the same module
    running the references (on the CPU under Triton's interpreter the ops are sent to the kernels by hand)."""
    from mdsample.models.cached import CachedLean
    from mdsample.models.lean import LeanConfig, LeanTransformer

    if not CUDA:
        monkeypatch.setattr(fused, "uses_kernels", lambda *tensors: fused._enabled)
    torch.manual_seed(0)
    cfg = LeanConfig(vocab_size=64, hidden_size=128, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=256,
                     rope_theta=500000.0, norm_eps=1e-5, qkv_bias=True)
    with torch.device(TRITON_DEVICE):
        model = LeanTransformer(cfg).to(dtype).eval()
        tokens = torch.randint(0, 64, (2, 40))
    denoiser = CachedLean(model, 63)
    mask = torch.ones_like(tokens)
    mask[0, :3] = 0
    columns = torch.tensor([[5, 6, 7, 8], [20, 21, 22, 23]], device=tokens.device)

    def run() -> tuple[torch.Tensor, ...]:
        out = model(tokens, attention_mask=mask, return_kv=True)
        cache = denoiser.new_cache(2, 40, tokens.device)
        denoiser.prefill(tokens, cache, torch.arange(2, device=tokens.device), attention_mask=mask)
        cached = denoiser.cached(tokens.gather(1, columns), columns, columns, cache, 4, attention_mask=mask)
        return out.logits, out.kv[1].keys, cached

    with torch.no_grad():
        got = run()
        with fused.disabled():
            want = run()
    tolerance = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=5e-2, rtol=5e-2)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, **tolerance)
