"""The likelihood of a decoded sequence under its decode order: the multi-token decoding error of a rule.

A rule that commits several positions in one step draws them independently from their marginals given the same
canvas; one token per step would have conditioned each on the ones before it. With ``commit_step`` recorded by the
loop, both likelihoods of a finished canvas can be recomputed after the fact:

* ``parallel=True``: every group of positions committed at the same step is scored from the canvas as it was before
  that step: log q(x), the rule's own sampling likelihood (one forward per step);
* ``parallel=False``: the same positions in the same order, one at a time: log p(x), the sequential model's
  likelihood of that order (one forward per position).

At temperature 1, E_q[log q - log p] estimates KL(q || p), the error the paper ("No Compute Left Behind", Table 6)
bounds by the summed entropies. The position choice itself is treated as given (as the paper does): it depends on
the drawn tokens only through the confidence, which the estimate ignores.
"""

from __future__ import annotations

import torch

from mdsample.core.denoiser import Denoiser


@torch.no_grad()
def order_log_likelihood(
    denoiser: Denoiser,
    tokens: torch.Tensor,
    commit_step: torch.Tensor,
    *,
    parallel: bool,
    conditioning: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Log-likelihood [B] of the decoded positions (``commit_step >= 0``) of ``tokens[B, L]``, see the module doc."""
    mask_id = denoiser.mask_id
    decoded = commit_step >= 0
    if parallel:
        order = torch.where(decoded, commit_step, -1)
    else:  # rank positions by (step, position): ties inside a step broken left to right
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        key = torch.where(decoded, commit_step * tokens.shape[1] + positions, -1)
        order = torch.where(decoded, key.argsort(dim=1).argsort(dim=1) - (~decoded).sum(dim=1, keepdim=True), -1)
    total = torch.zeros(tokens.shape[0], dtype=torch.float64, device=tokens.device)
    for k in range(int(order.max().item()) + 1):
        canvas = torch.where(decoded & (order >= k), mask_id, tokens)
        now = order == k
        if not now.any():
            continue
        logits = denoiser(canvas, **(conditioning or {})).double()
        if mask_id < logits.shape[-1]:
            logits[..., mask_id] = float("-inf")
        logp = logits.log_softmax(dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        total += torch.where(now, logp, torch.zeros_like(logp)).sum(dim=1)
    return total
