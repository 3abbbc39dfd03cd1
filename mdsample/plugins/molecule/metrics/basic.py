"""Validity, uniqueness and novelty (MOSES definitions).

- validity: fraction of all samples that are molecules (``chem.to_mol``), over every generated string.
- uniqueness: fraction of distinct canonical SMILES among the valid samples; ``unique@k`` looks at the first k
  valid samples only. With fewer than k valid samples it is, as in MOSES, the fraction over those there are
  (MOSES warns; so does ``compute``, in the key ``unique@k_n``: the number of molecules it looked at).
- novelty: fraction of the distinct valid canonical SMILES that are not in MOSES train.
Each is NaN when its denominator is empty (no samples, or no valid ones), so an all-invalid batch never looks
perfectly unique or novel.
"""

from __future__ import annotations

from collections.abc import Callable

NAN = float("nan")


def validity(n_total: int, n_valid: int) -> float:
    return n_valid / n_total if n_total else NAN


def uniqueness(canonical: list[str], k: int | None = None) -> float:
    """Distinct fraction of ``canonical[:k]`` (all when k is None or there are fewer than k)."""
    head = canonical if k is None else canonical[:k]
    return len(set(head)) / len(head) if head else NAN


def novelty(canonical: list[str], in_train: Callable[[list[str]], list[bool]]) -> float:
    """Fraction of distinct ``canonical`` SMILES for which ``in_train`` says False."""
    distinct = sorted(set(canonical))
    if not distinct:
        return NAN
    known = in_train(distinct)
    return 1.0 - sum(bool(k) for k in known) / len(distinct)
