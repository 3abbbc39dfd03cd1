"""The native modules' BLAS choice (models/blas.py) holds only while their forward runs."""

from __future__ import annotations

import pytest
import torch

from mdsample.models import blas


def current() -> torch._C._BlasBackend:
    return torch.backends.cuda.preferred_blas_library()


def test_off_cuda_the_callers_library_stays():
    before = current()
    with blas.preferred(torch.device("cpu")):
        assert current() == before
    with blas.preferred(torch.device("cuda")):  # a CPU build cannot switch: nothing changes, no error
        if not torch.cuda.is_available():
            assert current() == before
    assert current() == before


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_module_runs_cublaslt_and_restores_the_callers_choice():
    before = current()
    with blas.preferred(torch.device("cuda")):
        assert current() == torch._C._BlasBackend.Cublaslt
    assert current() == before
    with pytest.raises(ValueError), blas.preferred(torch.device("cuda")):
        raise ValueError
    assert current() == before
