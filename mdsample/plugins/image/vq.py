"""The VQ tokenizer of the house glyph model: a small diffusers ``VQModel``, its training loop, encode and decode.

Why diffusers' VQModel: it is the tokenizer class aMUSEd ships, so the house model and aMUSEd checkpoints go through
one detokenizing path (``decode(indices, force_not_quantize=True)`` with ``lookup_from_codebook``). A 32x32 glyph
becomes an 8x8 grid of codes (two downsamplings), which keeps canvases short (64 tokens plus the class token).

Training is plain VQ-VAE: mean squared reconstruction error plus diffusers' codebook/commitment term, with the
straight-through estimator of ``VectorQuantizer``. Glyphs are nearly binary, so no perceptual or adversarial loss is
needed. Codes that no image of the last ``restart_every`` steps used are re-seeded from encoder outputs of the
current batch (dead-code restart), which keeps a small codebook fully used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import VQModel

from mdsample.errors import ConfigError


@dataclass
class VQTrainConfig:
    """Architecture and optimisation of the tokenizer stage (exposed as ``domain.vq_*`` options)."""

    codebook_size: int = 256
    channels: list[int] = field(default_factory=lambda: [24, 48, 48])
    latent_channels: int = 16
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    restart_every: int = 200
    log_every: int = 100


def build_vqvae(cfg: VQTrainConfig, image_size: int = 32) -> VQModel:
    """A one-channel VQModel downsampling ``image_size`` by 4 (three encoder blocks, the last without stride)."""
    if len(cfg.channels) != 3 or min(cfg.channels) < 8:
        raise ConfigError(f"domain.vq_channels={cfg.channels} must be three widths >= 8, e.g. [24, 48, 48]")
    groups = 8 if all(c % 8 == 0 for c in cfg.channels) else 1
    return VQModel(
        in_channels=1,
        out_channels=1,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=tuple(cfg.channels),
        layers_per_block=1,
        latent_channels=cfg.latent_channels,
        num_vq_embeddings=cfg.codebook_size,
        norm_num_groups=groups,
        sample_size=image_size,
        lookup_from_codebook=True,
    )


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[N, H, W]`` -> float ``[N, 1, H, W]`` in [-1, 1] (the VQModel's input range)."""
    return images.unsqueeze(1).float() / 127.5 - 1.0


def latent_grid(vqvae: VQModel, image_size: int) -> int:
    return image_size // 2 ** (len(vqvae.config.block_out_channels) - 1)


@torch.no_grad()
def encode(vqvae: VQModel, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Code indices ``[N, h*w]`` (row-major) of uint8 images ``[N, H, W]``."""
    device = vqvae.device
    out = []
    for chunk in images.split(batch_size):
        h = vqvae.encode(to_pixels(chunk.to(device)).to(vqvae.dtype)).latents
        indices = vqvae.quantize(h)[2][2]
        out.append(indices.view(chunk.shape[0], -1))
    return torch.cat(out).long()


@torch.no_grad()
def decode(vqvae: VQModel, codes: torch.Tensor, signed: bool = True) -> torch.Tensor:
    """Images ``[N, C, H, W]`` in [0, 1] from code indices ``[N, h*w]``; ``signed``: the model outputs [-1, 1]."""
    n, length = codes.shape
    side = int(round(length**0.5))
    shape = (n, side, side, vqvae.config.latent_channels)
    out = vqvae.decode(codes.to(vqvae.device), force_not_quantize=True, shape=shape).sample
    out = out.float()
    return ((out + 1.0) / 2.0 if signed else out).clamp(0.0, 1.0)


def _restart_dead_codes(vqvae: VQModel, usage: torch.Tensor, latents: torch.Tensor, gen: torch.Generator) -> int:
    """Re-seed unused codebook rows from random encoder outputs of this batch; returns how many were re-seeded."""
    dead = usage == 0
    n_dead = int(dead.sum())
    if n_dead:
        flat = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).detach()
        pick = torch.randint(len(flat), (n_dead,), device=flat.device, generator=gen)
        weight = vqvae.quantize.embedding.weight
        weight.data[dead] = flat[pick].to(weight.dtype)
    return n_dead


def train_vqvae(
    images: np.ndarray, val_images: np.ndarray, cfg: VQTrainConfig, device: torch.device, seed: int = 0
) -> tuple[VQModel, dict[str, float]]:
    """Fit a VQModel on uint8 images ``[N, H, W]``; returns it (float32, eval mode) and its final statistics."""
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ConfigError(f"domain.vq_steps and domain.vq_batch_size must be >= 1, got {cfg.steps}, {cfg.batch_size}")
    torch.manual_seed(seed)
    gen = torch.Generator(device).manual_seed(seed)
    vqvae = build_vqvae(cfg, images.shape[-1]).to(device).train()
    data = torch.from_numpy(images).to(device)
    optimizer = torch.optim.AdamW(vqvae.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    usage = torch.zeros(cfg.codebook_size, device=device)
    codes_note = ""
    start = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        lr = cfg.lr * min(1.0, step / 100) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = to_pixels(data[torch.randint(len(data), (cfg.batch_size,), device=device, generator=gen)])
        h = vqvae.encode(x).latents
        quant, commit, (_, _, indices) = vqvae.quantize(h)
        recon = vqvae.decoder(vqvae.post_quant_conv(quant))
        rec_loss = F.mse_loss(recon, x)
        loss = rec_loss + commit
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        usage += torch.bincount(indices.view(-1), minlength=cfg.codebook_size)
        if step % cfg.restart_every == 0:
            used = int((usage > 0).sum())
            restarted = _restart_dead_codes(vqvae, usage, h, gen) if step < 0.8 * cfg.steps else 0
            codes_note = f"  codes used {used}/{cfg.codebook_size}, restarted {restarted}"
            usage.zero_()
        if step % cfg.log_every == 0 or step == cfg.steps:
            print(f"vq step {step:>6}/{cfg.steps}  recon {rec_loss.item():.4f}  commit {commit.item():.4f}  "
                  f"lr {lr:.2e}  {time.perf_counter() - start:.0f}s{codes_note}", flush=True)
    vqvae.eval()
    stats = reconstruction_stats(vqvae, val_images)
    stats["train_seconds"] = time.perf_counter() - start
    return vqvae, stats


@torch.no_grad()
def reconstruction_stats(vqvae: VQModel, images: np.ndarray) -> dict[str, float]:
    """Mean squared error (pixels in [0, 1]) and codebook usage of ``images`` after a round trip."""
    data = torch.from_numpy(images)
    codes = encode(vqvae, data)
    recon = torch.cat([decode(vqvae, c) for c in codes.split(1024)]).cpu()
    target = data.unsqueeze(1).float() / 255.0
    return {
        "val_mse": F.mse_loss(recon, target).item(),
        "codes_used": float(codes.unique().numel()),
        "codebook_size": float(vqvae.config.num_vq_embeddings),
    }
