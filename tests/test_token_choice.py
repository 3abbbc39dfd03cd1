"""Top-k / top-p token choice draws from the distribution it should, checked against an independent oracle.

The oracle is written from the definitions, in plain Python on one row of logits: softmax of logits / T, then keep
the k most likely tokens (top-k) and renormalise, then keep the smallest most-likely-first prefix whose mass reaches
p (top-p, the top token always kept) and renormalise. The chooser draws 200,000 rows at once with a seeded
generator; every empirical frequency must lie within 5 standard errors of the oracle, and excluded tokens must
never appear.
"""

from __future__ import annotations

import math

import pytest
import torch

from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError

LOGITS = [2.0, 1.3, 0.9, 0.1, -0.4, -1.7, 0.55]  # no ties, so the top-k and nucleus sets are unambiguous
DRAWS = 200_000


def oracle(logits: list[float], temperature: float, top_k: int, top_p: float) -> list[float]:
    scaled = [x / temperature for x in logits]
    top = max(scaled)
    weights = [math.exp(x - top) for x in scaled]
    probs = [w / sum(weights) for w in weights]
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    keep = set(order[:top_k] if top_k else order)
    probs = [p if i in keep else 0.0 for i, p in enumerate(probs)]
    probs = [p / sum(probs) for p in probs]
    nucleus, mass = set(), 0.0
    for i in order:
        if i in keep and mass < top_p:
            nucleus.add(i)
            mass += probs[i]
    probs = [p if i in nucleus else 0.0 for i, p in enumerate(probs)]
    return [p / sum(probs) for p in probs]


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), [
    (1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 3, 1.0), (1.5, 1, 1.0), (1.0, 0, 0.8), (1.0, 0, 0.3),
    (0.8, 4, 0.6), (2.0, 5, 0.9), (1.0, 0, 0.01),
])
def test_frequencies_match_the_oracle(temperature, top_k, top_p):
    chooser = TokenChooser(temperature, top_k, top_p)
    logits = torch.tensor(LOGITS).expand(DRAWS, -1)
    drawn = chooser(logits, torch.Generator().manual_seed(17))
    freq = torch.bincount(drawn, minlength=len(LOGITS)).double() / DRAWS
    for token, p in enumerate(oracle(LOGITS, temperature, top_k, top_p)):
        if p == 0.0:
            assert freq[token] == 0.0, (token, freq.tolist())
        else:
            assert abs(freq[token] - p) < 5 * math.sqrt(p * (1 - p) / DRAWS) + 1e-12, (token, p, freq.tolist())


def test_temperature_zero_is_argmax_and_filters_are_checked():
    logits = torch.tensor([LOGITS, LOGITS[::-1]])
    assert TokenChooser(0.0, 3, 0.5)(logits).tolist() == [0, len(LOGITS) - 1]
    for bad in ({"temperature": -1.0}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}):
        with pytest.raises(ConfigError):
            TokenChooser(**bad)


def test_same_generator_seed_same_tokens_and_rows_are_independent():
    logits = torch.tensor(LOGITS).expand(1000, -1)
    chooser = TokenChooser(1.0, 0, 0.9)
    a = chooser(logits, torch.Generator().manual_seed(5))
    assert torch.equal(a, chooser(logits, torch.Generator().manual_seed(5)))
    assert 1 < len(set(a.tolist()))  # not one draw broadcast to every row
