"""The built-in plugin that contributes every selection rule of ``mdsample.core.rules`` as a sampler.

It is an ordinary entry-point plugin (``samplers = "mdsample.plugins.samplers"``), so pinning it out with
``MDSAMPLE_PLUGINS`` leaves no samplers at all, exactly as for a third-party plugin. It describes each rule by name,
description and config without importing the rules (which import torch): ``mdsample list`` and config errors stay
fast, and a rule's module is imported when a run uses it. tests/test_describe.py checks that each description
matches the rule it loads (the description is the rule class's one-line docstring).
"""

from __future__ import annotations

from mdsample.core.rules import BUILTIN
from mdsample.core.rules import configs as c
from mdsample.describe import SamplerInfo
from mdsample.hookspecs import hookimpl

DESCRIPTIONS = {  # name -> (one-line description, config)
    "klass": ("Commit positions whose last H KLs are < kl_threshold and confidence > conf_threshold, else top-k by "
              "conf.", c.KLASSConfig),
    "med": ("Positions with entropy < lambda, lowest first, at most k_max; else the single lowest-entropy one.",
            c.MEDConfig),
    "ar_med": ("Leftmost contiguous run of masked positions with entropy < lambda (at most k_max); else the leftmost "
               "one.", c.ARMEDConfig),
    "eb": ("Lowest-entropy prefix with sum(H) - max(H) <= gamma (optionally at most k_max), at least one position.",
           c.EBConfig),
    "confidence": ("Top-k by confidence p(x0), k from the block's linear schedule (LLaDA low_confidence).",
                   c.NoOptions),
    "margin": ("Top-k by margin p(top1) - p(top2), k from the block's linear schedule.", c.NoOptions),
    "entropy": ("Top-k by lowest entropy, k from the block's linear schedule.", c.NoOptions),
    "random": ("k uniformly random masked positions per step, k from the block's linear schedule.", c.NoOptions),
    "maskgit": ("Cosine schedule; top-k of log p(x0) + annealed Gumbel noise (MaskGIT's choice temperature).",
                c.MaskGITConfig),
    "threshold": ("Every masked position with confidence > threshold, at least the most confident one (Fast-dLLM).",
                  c.ThresholdConfig),
}


@hookimpl
def register_samplers(register):
    for name, reference in BUILTIN.items():
        description, config = DESCRIPTIONS[name]
        register(SamplerInfo(name, description, reference, config))
