"""Triton's interpreter as the CPU stand-in for CUDA in the kernel tests of this package."""

from __future__ import annotations

import importlib.util
import os

import pytest


@pytest.fixture(autouse=True)
def interpreter_loop_bounds(monkeypatch):
    """Triton's interpreter passes a scalar argument as a one-element array and converts it for ``range`` with
    ``int(array)``, which numpy >= 2.4 refuses; kernels with a loop over a runtime bound (the skinny GEMM's K, the
    attention's keys) read it with ``.item()`` instead. (Compiled kernels are unaffected.)"""
    if os.environ.get("TRITON_INTERPRET") != "1" or importlib.util.find_spec("triton") is None:
        return
    from triton.runtime import interpreter

    patch = interpreter._patch_lang_tensor

    def patched(tensor):
        patch(tensor)
        tensor.__index__ = lambda self: int(self.handle.data.item())

    monkeypatch.setattr(interpreter, "_patch_lang_tensor", patched)
