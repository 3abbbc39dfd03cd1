"""A tiny analytic domain for the front-end tests: strings over a small alphabet, no model weights, instant.

The denoiser prefers, at each position, the successor (cyclically) of its left neighbour's letter, and weakly the
letter ``position mod K``; so logits change as neighbours commit (KLASS's KL history has something to see) and a
"valid" string is one where every letter follows its predecessor. Registered by the tests as plugin "toy".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mdsample.core.state import MaskedState
from mdsample.domain import Domain, DomainOptions, Initial
from mdsample.hookspecs import hookimpl

ALPHABET = "abcdef"


class SuccessorDenoiser:
    """logits[b, i, v] = 3 [v == left(i) + 1 mod K] + [v == i mod K]; the mask token is never proposed."""

    def __init__(self, alphabet: str = ALPHABET):
        self.k = len(alphabet)
        self.vocab_size = self.k + 1
        self.mask_id = self.k
        self.calls = 0

    def __call__(self, tokens: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        b, length = tokens.shape
        logits = torch.zeros(b, length, self.vocab_size, device=tokens.device)  # the tokens' device (cuda on a GPU)
        pos = torch.arange(length, device=tokens.device)
        logits[:, pos, pos % self.k] += 1.0
        left = tokens[:, :-1]
        known = left != self.mask_id
        succ = torch.where(known, (left + 1) % self.k, torch.zeros_like(left))
        bonus = torch.zeros(b, length - 1, self.vocab_size, device=tokens.device).scatter(-1, succ.unsqueeze(-1), 3.0)
        logits[:, 1:] += bonus * known.unsqueeze(-1)
        logits[..., self.mask_id] = -1e4
        return logits


class ToyDomain(Domain):
    """Successor strings over a six-letter alphabet (tests only)."""

    name = "toy"
    description = "Successor strings over a six-letter alphabet (tests only)"

    @dataclass
    class Options(DomainOptions):
        length: int = 8

    def defaults(self) -> dict:
        return {"n": 6, "decode": {"steps": 4}, "samplers": {"klass": {"kl_threshold": 0.05}}}

    def tasks(self) -> list[str]:
        return ["unconditional", "prompted"]

    def load_denoiser(self, options: DomainOptions, device: torch.device) -> SuccessorDenoiser:
        return SuccessorDenoiser()

    def initial_state(self, denoiser, options, n: int, device: torch.device, offset: int = 0) -> Initial:
        prompt = None
        if options.prompt:
            prompt = torch.tensor([ALPHABET.index(c) for c in options.prompt], device=device)
        state = MaskedState.blank(n, options.length, denoiser.mask_id, prompt=prompt, device=device)
        return Initial(state=state, requests=[{"prompt": options.prompt} for _ in range(n)])

    def decode(self, tokens: torch.Tensor, initial: Initial) -> list[str]:
        return ["".join(ALPHABET[t] for t in row.tolist()) for row in tokens]

    def save(self, objects: list[str], run_dir: Path, initial: Initial) -> list[Path]:
        path = run_dir / "samples.txt"
        path.write_text("".join(f"{s}\n" for s in objects))
        return [path]

    def metrics(self, objects: list[str], options, initial: Initial) -> dict[str, float]:
        def valid(s: str) -> bool:
            ids = [ALPHABET.index(c) for c in s]
            return all(b == (a + 1) % len(ALPHABET) for a, b in zip(ids, ids[1:], strict=False))

        if not objects:
            return {"valid": float("nan"), "unique": float("nan")}
        return {"valid": sum(map(valid, objects)) / len(objects), "unique": len(set(objects)) / len(objects)}


@hookimpl
def register_domains(register):
    register(ToyDomain())
