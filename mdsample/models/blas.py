"""The BLAS library a native module's GEMMs run on: cuBLASLt, which was faster for a decode step's few rows.

Why: at batch 1 a LLaDA-8B decode step multiplies 32 rows by every weight, and the GEMMs are 4.1 of its 5 ms of
GPU time. With PyTorch's default library (cuBLAS) the H200 step took 5.44 ms, with cuBLASLt 5.26 ms (Dream-7B: 5.27
and 5.10; batch 8 the same either way; BENCHMARKS.md, "Session 11"). PyTorch's choice is process-wide
(``torch.backends.cuda.preferred_blas_library``), so the module sets it around its own forward only and restores the
caller's afterwards; a CUDA graph keeps the kernels chosen while it was captured. Where cuBLASLt is not available
(a CPU build, a ROCm build without it) the caller's library stays.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PREFERRED: str | None = "cublaslt"
"""The library native modules run their GEMMs on; None keeps PyTorch's (benchmarks/rule_step.py ``--blas``)."""


@contextlib.contextmanager
def preferred(device: torch.device) -> Iterator[None]:
    """``PREFERRED`` as PyTorch's BLAS library while the block runs, on a CUDA device."""
    if device.type != "cuda" or PREFERRED is None:
        yield
        return
    before = torch.backends.cuda.preferred_blas_library()
    try:
        torch.backends.cuda.preferred_blas_library(PREFERRED)
    except RuntimeError:  # not built with it: the caller's library stays
        before = None
    try:
        yield
    finally:
        if before is not None:
            torch.backends.cuda.preferred_blas_library(before)
