"""``decode.compile``: whether a decode runs its denoiser's forward through torch.compile.

Why: in eager PyTorch a step of a large model at batch 1 is bound by kernel launches; torch.compile fuses the
elementwise work between the GEMMs (on an H100 the LLaDA-8B forward went from 13.87 to 11.04 ms, BENCHMARKS.md). A
denoiser opts in by declaring ``compilable = True`` and a ``use_compiled(on)`` method that switches its forward
between the compiled and the eager version; it promises that its compiled calls see static shapes only (the
captured step pads batches to buckets, core/capture.py) and no Python state that changes between steps, so that
after the first call of each shape nothing recompiles. The compiled forward makes no CUDA graphs of its own: the
captured step captures the compiled kernels.

Modes: ``off`` eager; ``on`` compiled (a ConfigError for a denoiser that is not compilable); ``auto`` compiled for a
compilable denoiser on a CUDA device, else eager (on the CPU compilation costs more than a short decode saves).
"""

from __future__ import annotations

from typing import Any

import torch

from mdsample.core.choices import COMPILE_MODES
from mdsample.errors import ConfigError


def use_compile(denoiser: Any, mode: str, device: torch.device) -> bool:
    """Switch ``denoiser``'s compiled forward on or off for a decode on ``device``; returns whether it is on."""
    if mode not in COMPILE_MODES:
        raise ConfigError(f"decode.compile={mode!r} is unknown; choose one of: {', '.join(COMPILE_MODES)}")
    compilable = bool(getattr(denoiser, "compilable", False))
    if mode == "on" and not compilable:
        raise ConfigError(f"decode.compile=on: the denoiser {type(denoiser).__name__} does not declare itself "
                          f"compilable (the native LLaDA / Dream modules do); use decode.compile=auto or off")
    on = mode == "on" or (mode == "auto" and compilable and device.type == "cuda")
    if compilable:
        denoiser.use_compiled(on)
    return on
