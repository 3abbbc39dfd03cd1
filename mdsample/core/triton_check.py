"""Whether Triton imports here: the fused kernels (models/fused.py, core/kl_history.py) run only where it does."""

from __future__ import annotations

import functools


@functools.cache
def triton_available() -> bool:
    """CUDA builds of torch ship Triton; the CPU builds do not (their plain-torch references run instead)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
