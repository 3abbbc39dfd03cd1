"""One-line summaries of errors raised by transformers, tokenizers or a checkpoint's own code.

mdsample's errors are one actionable line (the CLI prints only the message); the libraries underneath often raise
multi-paragraph messages, so their first non-empty line is what gets quoted.
"""

from __future__ import annotations


def brief(err: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{err.__class__.__name__}: {lines[0]}" if lines else err.__class__.__name__
