"""The reference loops' semantics (ALGORITHMS.md, "Reference semantics"), written plainly: batch 1, fp64.

These are the oracles for the parity tests: deliberately naive (full-canvas fp64 copies, Python loops), exactly
as the reference LLaDA generate (low_confidence) and KLASS (alg "klass", unmask_strategy "all") behave.
"""

from __future__ import annotations

import torch


def linear_counts(n: int, steps: int) -> list[int]:
    return [n // steps + (1 if i < n % steps else 0) for i in range(steps)]


def llada_generate(model, prompt: torch.Tensor, gen_length: int, steps: int, block_length: int) -> torch.Tensor:
    mask = model.mask_id
    plen = prompt.shape[1]
    x = torch.full((1, plen + gen_length), mask, dtype=torch.long)
    x[:, :plen] = prompt
    blocks = gen_length // block_length
    per_block = steps // blocks
    for b in range(blocks):
        end = plen + (b + 1) * block_length
        counts = linear_counts(int((x[0, end - block_length : end] == mask).sum()), per_block)
        for i in range(per_block):
            masked = x == mask
            logits = model(x)
            x0 = logits.argmax(-1)
            p = torch.softmax(logits.double(), dim=-1)
            conf = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            conf[:, end:] = float("-inf")
            x0 = torch.where(masked, x0, x)
            conf = torch.where(masked, conf, torch.tensor(float("-inf"), dtype=torch.float64))
            pick = torch.topk(conf[0], k=counts[i]).indices
            x[0, pick] = x0[0, pick]
    return x


def klass_generate(
    model, prompt: torch.Tensor, gen_length: int, steps: int, block_length: int,
    conf_threshold: float, kl_threshold: float, history: int,
) -> tuple[torch.Tensor, int, int]:
    """Returns (tokens, number of denoiser calls, number of steps that committed ready positions)."""
    mask = model.mask_id
    plen = prompt.shape[1]
    x = torch.full((1, plen + gen_length), mask, dtype=torch.long)
    x[:, :plen] = prompt
    blocks = gen_length // block_length
    per_block = steps // blocks
    kl_hist = torch.zeros(1, x.shape[1], history, dtype=torch.float64)
    p_prev = torch.zeros(1, x.shape[1], model.vocab_size, dtype=torch.float64)
    calls = ready_steps = 0
    for b in range(blocks):
        start, end = plen + b * block_length, plen + (b + 1) * block_length
        counts = linear_counts(int((x[0, start:end] == mask).sum()), per_block)
        for step in range(per_block):
            in_block = torch.zeros_like(x, dtype=torch.bool)
            in_block[:, start:end] = True
            masked = (x == mask) & in_block
            if not masked.any():
                break
            logits = model(x)
            calls += 1
            p = torch.softmax(logits.double(), dim=-1)
            x0 = p.argmax(-1)
            conf = p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
            kl = (p * (torch.log(p + 1e-12) - torch.log(p_prev + 1e-12))).sum(-1)
            kl_hist = torch.roll(kl_hist, shifts=-1, dims=-1)
            kl_hist[..., -1] = kl
            p_prev = p.clone()
            if step >= history - 1:
                stable = (kl_hist < kl_threshold).all(-1)
            else:
                stable = torch.zeros_like(masked)
            ready = stable & (conf > conf_threshold) & masked
            if ready.any():
                pick = ready
                ready_steps += 1
            else:
                scores = torch.where(masked, conf, torch.tensor(float("-inf"), dtype=torch.float64))
                pick = torch.zeros_like(masked)
                pick[0, torch.topk(scores[0], k=counts[step]).indices] = True
            x[pick] = x0[pick]
    return x, calls, ready_steps
