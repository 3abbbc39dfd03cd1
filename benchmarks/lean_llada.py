"""A lean LLaDA-shaped bidirectional transformer with random weights, for timing the sampling loop.

Shape presets: "llada8b" (32 layers, d 4096, 32 heads, SwiGLU 12288, vocab 126,464) for the GPU and "cpu"
(a small model with the full LLaDA vocabulary, so the per-step statistics cost what they cost at scale).
RMSNorm, RoPE-free (timing only: rotary embeddings do not change the cost picture), SDPA attention, no biases.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SHAPES = {
    "llada8b": dict(layers=32, dim=4096, heads=32, hidden=12288, vocab=126464),
    "cpu": dict(layers=2, dim=256, heads=4, hidden=512, vocab=126464),
}


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.RMSNorm(dim, eps=1e-5)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.ff_norm = nn.RMSNorm(dim, eps=1e-5)
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.ff_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(b, length, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.attn_out(a.transpose(1, 2).reshape(b, length, d))
        gate, up = self.gate_up(self.ff_norm(x)).chunk(2, dim=-1)
        return x + self.ff_out(F.silu(gate) * up)


class LeanLLaDA(nn.Module):
    """tokens[B, L] -> logits[B, L, V]; mask id 126336 as in LLaDA."""

    def __init__(self, layers: int, dim: int, heads: int, hidden: int, vocab: int):
        super().__init__()
        self.mask_id = 126336
        self.vocab_size = vocab
        self.wte = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, hidden) for _ in range(layers))
        self.ln_f = nn.RMSNorm(dim, eps=1e-5)
        self.ff_out = nn.Linear(dim, vocab, bias=False)

    @torch.no_grad()
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens)
        for block in self.blocks:
            x = block(x)
        return self.ff_out(self.ln_f(x))


def build(shape: str, device: torch.device, dtype: torch.dtype) -> LeanLLaDA:
    with torch.device(device):
        model = LeanLLaDA(**SHAPES[shape]).to(dtype)
    for p in model.parameters():
        nn.init.normal_(p, std=0.02)
    return model.eval()
