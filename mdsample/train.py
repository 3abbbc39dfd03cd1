"""The generic trainer: fits a domain's house denoiser with the MDLM objective, nanoGPT style.

One function, top to bottom: get the domain's token rows, build the ModernBERT house model, then AdamW with linear
warmup and cosine decay over random batches drawn straight from a device-resident tensor (no DataLoader: the whole
corpus is a few MB of token ids). On CUDA it uses TF32 matmuls, bf16 autocast, fused AdamW and, optionally,
torch.compile; on CPU it runs in plain float32, which is what the tests use.

A run directory ends up with ``config.json`` + ``model.safetensors`` (float16, the best validation checkpoint),
the domain's assets, ``train_log.jsonl`` and ``MODEL_CARD.md``. ``max_minutes`` stops the run cleanly, saving as
usual, so a job under a hard wall-clock limit always leaves a usable model behind; a job that is killed instead
resumes from its last checkpoint (train_checkpoint.py) with ``mdsample train --resume RUN_DIR``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch
import transformers

from mdsample.domain import Domain, DomainOptions, TrainData
from mdsample.errors import ConfigError
from mdsample.models.house import (
    build_house_model,
    house_config,
    load_house_denoiser,
    save_house_model,
    sha256_file,
)
from mdsample.models.mdlm import mdlm_objective
from mdsample.train_checkpoint import CHECKPOINT, Progress, load_checkpoint, save_checkpoint
from mdsample.train_config import TrainConfig

__all__ = ["TrainConfig", "lr_factor", "train"]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: linear warmup, then cosine decay down to ``cfg.min_lr_ratio``."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def train(domain: Domain, options: DomainOptions, cfg: TrainConfig, out_dir: Path, command: str = "") -> Path:
    """Train the house model of ``domain`` into ``out_dir`` and return ``out_dir``; with ``cfg.resume``, continue
    from ``out_dir``'s checkpoint (from step 0 when there is none yet)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from mdsample.api import resolve_device

    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 for whatever autocast leaves in float32
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and cfg.dtype == "bf16")

    data: TrainData = domain.train_data(options)
    train_rows, val_rows = data.train.to(device, torch.long), data.val.to(device, torch.long)
    if len(train_rows) == 0 or len(val_rows) == 0:
        raise ConfigError(f"domain {domain.name!r} returned an empty train or val split")
    config = house_config(data.vocab_size, data.mask_id, data.pad_id, train_rows.shape[1], cfg.size)
    model = (build_house_model(config) if cfg.init is None else _init_model(cfg.init, config)).to(device).train()
    n_params = sum(p.numel() for p in model.parameters())
    forward = torch.compile(model) if cfg.compile else model

    def logits(xt: torch.Tensor) -> torch.Tensor:
        return forward(input_ids=xt).logits

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        fused=device.type == "cuda",
    )

    @torch.no_grad()
    def val_loss() -> float:
        """Same objective on the same val rows, times and masks every time (fixed seed), so evals compare."""
        model.eval()
        gen = torch.Generator(device).manual_seed(cfg.seed + 1)
        total = torch.zeros((), device=device)
        for _ in range(cfg.eval_batches):
            idx = torch.randint(len(val_rows), (cfg.batch_size,), device=device, generator=gen)
            with autocast:
                total += mdlm_objective(
                    logits, val_rows[idx], data.mask_id, frozen_prefix=data.frozen_prefix, generator=gen
                ).loss
        model.train()
        return total.item() / cfg.eval_batches

    gen = torch.Generator(device).manual_seed(cfg.seed)
    checkpoint, log_path = out_dir / CHECKPOINT, out_dir / "train_log.jsonl"
    zero = torch.zeros((), device=device)
    progress = Progress(0, None, 0, zero.clone(), zero.clone())
    if cfg.resume and checkpoint.is_file():
        progress = load_checkpoint(checkpoint, model, optimizer, gen)
        print(f"resuming {out_dir} from step {progress.step}", flush=True)
    elif cfg.resume:
        print(f"no checkpoint in {out_dir} yet; starting from step 0", flush=True)
    if log_path.is_file() and log_path.stat().st_size >= progress.log_bytes:
        os.truncate(log_path, progress.log_bytes)  # drop what was logged after the checkpoint (all of it for step 0)
    step, best, run_loss, run_ce = progress.step, progress.best, progress.run_loss, progress.run_ce
    tokens_per_step = cfg.batch_size * train_rows.shape[1]
    start = tick = saved_at = time.perf_counter()
    last_loss, last_val = float("nan"), float("nan")
    with open(log_path, "a") as log:
        while step < cfg.steps:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, cfg)
            idx = torch.randint(len(train_rows), (cfg.batch_size,), device=device, generator=gen)
            with autocast:
                out = mdlm_objective(
                    logits, train_rows[idx], data.mask_id, frozen_prefix=data.frozen_prefix, generator=gen,
                    schedule=cfg.noise_schedule,
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            run_loss += out.loss.detach()
            run_ce += out.masked_ce.detach()
            step += 1

            elapsed = time.perf_counter() - start
            out_of_time = cfg.max_minutes is not None and elapsed >= 60 * cfg.max_minutes
            done = step == cfg.steps or out_of_time
            record: dict[str, float | int] = {}
            if step % cfg.log_every == 0 or done:
                n = step % cfg.log_every or cfg.log_every
                now = time.perf_counter()
                last_loss = run_loss.item() / n
                record.update(
                    step=step,
                    loss=last_loss,
                    masked_ce=run_ce.item() / n,
                    lr=optimizer.param_groups[0]["lr"],
                    tokens_per_s=n * tokens_per_step / (now - tick),
                    elapsed_s=now - start,
                )
                run_loss.zero_()
                run_ce.zero_()
                tick = now
            if step % cfg.eval_every == 0 or done:
                last_val = val_loss()
                record.update(step=step, val_loss=last_val)
                if best is None or last_val < best[0]:
                    best = (last_val, step, {k: v.detach().clone() for k, v in model.state_dict().items()})
                tick = time.perf_counter()  # keep eval time out of tokens/s
            if record:
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(
                    f"step {step:>6}/{cfg.steps}  loss {last_loss:.4f}  val {last_val:.4f}  "
                    f"lr {optimizer.param_groups[0]['lr']:.2e}  {record.get('tokens_per_s', 0):,.0f} tok/s",
                    flush=True,
                )
            if out_of_time:
                print(f"stopping at step {step}: max_minutes={cfg.max_minutes} reached", flush=True)
                break
            by_steps = cfg.checkpoint_steps and step % cfg.checkpoint_steps == 0
            by_time = cfg.checkpoint_minutes and time.perf_counter() - saved_at >= 60 * cfg.checkpoint_minutes
            if (by_steps or by_time) and not done:
                save_checkpoint(checkpoint, model, optimizer, gen, Progress(step, best, log.tell(), run_loss, run_ce))
                saved_at = time.perf_counter()
    wall = time.perf_counter() - start

    assert best is not None  # the final step always evaluates
    model.load_state_dict(best[2])
    weights = save_house_model(model, out_dir)
    domain.save_assets(options, out_dir)
    _write_card(
        out_dir / "MODEL_CARD.md",
        domain,
        cfg,
        command,
        step,
        last_loss,
        last_val,
        best[:2],
        wall,
        device,
        n_params,
        weights,
    )
    checkpoint.unlink(missing_ok=True)  # the run is complete: nothing left to resume
    return out_dir


def _init_model(path: str, expected: transformers.ModernBertConfig) -> transformers.ModernBertForMaskedLM:
    """The checkpoint to fine-tune, in float32; its vocabulary, mask id and canvas length must match the data."""
    model = load_house_denoiser(path).model
    got = model.config
    keys = ("vocab_size", "mask_token_id", "max_position_embeddings")
    if any(getattr(got, k) != getattr(expected, k) for k in keys):
        raise ConfigError(f"train.init={path} has {', '.join(f'{k}={getattr(got, k)}' for k in keys)} but the data "
                          f"needs {', '.join(f'{k}={getattr(expected, k)}' for k in keys)}")
    return model


def _write_card(
    path: Path,
    domain: Domain,
    cfg: TrainConfig,
    command: str,
    steps: int,
    train_loss: float,
    val_loss: float,
    best: tuple[float, int],
    wall: float,
    device: torch.device,
    n_params: int,
    weights: Path,
) -> None:
    """MODEL_CARD.md: how the weights were made and the sha256 that identifies them."""
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    lines = [
        f"# mdsample house model: {domain.name}",
        "",
        f"ModernBertForMaskedLM ({cfg.size}), {n_params:,} parameters, trained with the MDLM objective"
        + f" ({cfg.noise_schedule} noise schedule, NELBO-weighted masked cross-entropy per maskable token;"
        + " validation loss on the linear schedule's estimator).",
        "",
        f"- command: `{command or '(python API)'}`",
        f"- steps: {steps} of {cfg.steps}, batch size {cfg.batch_size}",
        f"- final train loss: {train_loss:.4f}; final val loss: {val_loss:.4f}",
        f"- saved checkpoint: best val loss {best[0]:.4f} at step {best[1]}",
        f"- wall-clock: {wall / 60:.1f} min on {device.type} ({device_name})",
        f"- torch {torch.__version__}, transformers {transformers.__version__}",
        f"- weights: `{weights.name}` (float16, {weights.stat().st_size:,} bytes)",
        f"- sha256: `{sha256_file(weights)}`",
        "",
        "## Train config",
        "",
        "```json",
        json.dumps(asdict(cfg), indent=2),
        "```",
        "",
    ]
    path.write_text("\n".join(lines))
