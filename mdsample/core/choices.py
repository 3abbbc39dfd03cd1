"""The named choices of the decode settings, in a module without torch.

The config checks ``decode.confidence`` / ``decode.cache`` / ``decode.capture`` / ``decode.compile`` against these
before anything heavy is imported, so that a typo is answered at once; the modules that implement them import the
same tuples.
"""

CONFIDENCES = ("drawn", "mode")
"""What ``conf`` scores (stats.py): the probability of the drawn token x0 (LLaDA, Fast-dLLM, Dream, MaskGIT), or of
the distribution's mode. They agree at temperature 0; with sampled tokens "drawn" favours the luckiest draws each step
(mode-seeking, low diversity) while "mode" makes the position choice independent of the draw."""

CACHE_MODES = ("none", "prefix", "dual")
"""none: every step is a full forward; prefix / dual: Fast-dLLM's prefix cache and dual cache (cache.py)."""

CAPTURE_MODES = ("auto", "on", "off")
"""auto: a CUDA-graph step for capturable denoisers on a CUDA device; on: always (error where impossible); off."""

COMPILE_MODES = ("auto", "on", "off")
"""auto: a torch.compile'd forward for compilable denoisers on a CUDA device; on: for any compilable denoiser
(an error for others); off: eager."""

CORRECT_PICKS = ("random", "confidence")
"""Which committed positions a corrector step re-masks (corrector.py): uniformly at random, or weighted towards the
tokens the model was least sure of when it last drew them."""
