"""What a "good" synthetic promoter-like sequence is: the motifs it must carry and its GC-content band.

The corpus (``data``) plants these motifs and the metrics (``metrics``) check for them, so both read the same
specification from here. A sequence is valid when it is made of A/C/G/T only, contains a TATA box anywhere, contains
at least one of the restriction sites anywhere, and has its GC fraction inside ``GC_RANGE``.
"""

from __future__ import annotations

import math

LENGTH = 32
TATA_BOX = "TATAAA"
SITES = {"EcoRI": "GAATTC", "BamHI": "GGATCC", "HindIII": "AAGCTT"}
GC_RANGE = (0.4, 0.6)
TATA_STARTS = (2, 8)  # inclusive range of planted TATA box starts: near the 5' end, as upstream of a TSS
SITE_STARTS = (16, 24)  # inclusive range of planted restriction-site starts, in the second half


def gc_content(sequence: str) -> float:
    """GC fraction of the sequence's bases (N not counted); NaN when it has none."""
    bases = sum(sequence.count(b) for b in "ACGT")
    return (sequence.count("G") + sequence.count("C")) / bases if bases else math.nan


def has_tata(sequence: str) -> bool:
    return TATA_BOX in sequence


def has_site(sequence: str) -> bool:
    return any(site in sequence for site in SITES.values())


def gc_ok(sequence: str) -> bool:
    gc = gc_content(sequence)
    return GC_RANGE[0] <= gc <= GC_RANGE[1]  # False for NaN


def is_valid(sequence: str) -> bool:
    """All constraints at once (see the module docstring)."""
    return set(sequence) <= set("ACGT") and has_tata(sequence) and has_site(sequence) and gc_ok(sequence)
