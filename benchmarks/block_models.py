"""mdsample's step against the block-diffusion models' own generation, on the same random weights in the same run.

Item 6 of issue 20 (the GPU numbers are in BENCHMARKS.md): DiffusionGemma-26B-A4B through transformers' own ``generate``
(``eb`` rule, its accept-and-renoise sampler) and LLaDA2.0-mini through diffusers' ``LLaDA2Pipeline`` +
``BlockRefinementScheduler`` (``threshold`` rule, floor "schedule"), each next to mdsample's ``decode_blocks`` with
the same settings, at batch 1 and 8 (LLaDA2 also with its cached block-causal context, ``mdsample_cached``).
Per run: ``ms_per_step`` = wall-clock / denoiser calls (counted by a forward hook on the model, so the two sides are
compared per forward, whatever their step counts), ``calls``, ``seconds``.
Targets (issue 20): mdsample <= 1.05x the model's own step at batch 1, faster at batch 8.

Shapes: without ``--config`` the built-in shapes below stand in for the checkpoints; they are this file's reading
of the published model sizes, not the checkpoints' config.json. For exact shapes pass the checkpoint's config.json
(``--config gemma=PATH --config llada2=PATH``; config files only, no weights are read: the weights are random).

    python benchmarks/block_models.py --device cuda --out benchmarks/results/block_models_h200.json
    python benchmarks/block_models.py --tiny        # CPU smoke test (seconds)
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from mdsample.core.blocks import decode_blocks
from mdsample.core.reselect import Reselect
from mdsample.core.rules import BUILTIN_RULES
from mdsample.models.llada2 import LLaDA2Config, build_llada2
from mdsample.plugins.text.adapters.diffusion_gemma import GemmaBlocks
from mdsample.plugins.text.adapters.llada2 import LLaDA2Blocks

GEMMA_26B_A4B = dict(vocab_size=262144, hidden_size=2816, intermediate_size=2112, num_hidden_layers=30,
                     num_attention_heads=16, num_key_value_heads=8, head_dim=256, num_experts=128, top_k_experts=8,
                     moe_intermediate_size=704, sliding_window=1024)
LLADA2_MINI = dict(vocab_size=157184, hidden_size=2048, intermediate_size=5120, num_hidden_layers=20,
                   num_attention_heads=16, num_key_value_heads=4, head_dim=128, num_experts=256, num_experts_per_tok=8,
                   moe_intermediate_size=512, num_shared_experts=1, n_group=8, topk_group=4, first_k_dense_replace=1,
                   routed_scaling_factor=2.5, partial_rotary_factor=0.5, rope_theta=600000.0)
TINY_GEMMA = dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, head_dim=16, num_experts=4, top_k_experts=2, moe_intermediate_size=16,
                  sliding_window=16)
TINY_LLADA2 = dict(LLADA2_MINI, vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_experts=8, num_experts_per_tok=2,
                   moe_intermediate_size=16, n_group=2, topk_group=1)


@contextmanager
def built_on(device: torch.device, dtype: torch.dtype):
    """Random weights made where they run, in their dtype: made on the CPU in float32 first, the 26B model alone
    takes over 100 GB and minutes of initialisation before it can move."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def counted(model: torch.nn.Module) -> list[int]:
    calls = [0]
    model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def timed(fn, calls: list[int], device: torch.device) -> dict:
    fn()  # warm-up
    calls[0] = 0
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "calls": calls[0], "ms_per_step": 1000 * seconds / max(calls[0], 1)}


def gemma(shape: dict, batches: list[int], device: torch.device, dtype: torch.dtype, gen: int, steps: int):
    """Rows of DiffusionGemma's own generate and mdsample's, one per batch size (the model is built once)."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, Gemma4VisionConfig
    from transformers.models.diffusion_gemma.configuration_diffusion_gemma import DiffusionGemmaTextConfig
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSamplerConfig

    text = DiffusionGemmaTextConfig(**shape, layer_types=None, max_position_embeddings=8192)
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=1, head_dim=8)
    v = shape["vocab_size"]
    config = DiffusionGemmaConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                  boi_token_id=v - 3, eoi_token_id=v - 2, image_token_id=v - 1)
    with built_on(device, dtype):
        model = DiffusionGemmaForBlockDiffusion(config).eval()
    calls = counted(model.model.decoder)  # generate() calls the decoder, not the top-level forward
    settings = dict(t_min=0.4, t_max=0.8, stability_threshold=1, confidence_threshold=None)
    for batch in batches:
        prompt = torch.randint(3, v - 3, (batch, 128), device=device)
        own = timed(lambda: model.generate(prompt, max_new_tokens=gen, max_denoising_steps=steps, eos_token_id=None,
                                           sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.1), **settings),
                    calls, device)
        ours = timed(lambda: decode_blocks(GemmaBlocks(model), prompt, BUILTIN_RULES["eb"](gamma=0.1),
                                           gen_length=gen, steps=steps, reselect=Reselect(0.8, 0.4, 1, None)),
                     calls, device)
        yield {"model": "diffusion_gemma", "batch": batch, "own": own, "mdsample": ours,
               "ratio": ours["ms_per_step"] / own["ms_per_step"]}


def llada2(shape: dict, batches: list[int], device: torch.device, dtype: torch.dtype, gen: int, steps: int):
    """Rows of diffusers' LLaDA2Pipeline and mdsample's, one per batch size (the model is built once)."""
    from diffusers import BlockRefinementScheduler, LLaDA2Pipeline

    with built_on(device, dtype):
        model = build_llada2(LLaDA2Config(**shape), None, device, dtype)
    calls = counted(model)
    mask = shape["vocab_size"] - 1
    pipe = LLaDA2Pipeline(model=model, scheduler=BlockRefinementScheduler(), tokenizer=None)
    pipe.set_progress_bar_config(disable=True)
    rule = BUILTIN_RULES["threshold"](threshold=0.95, floor="schedule")
    for batch in batches:
        prompt = torch.randint(0, mask, (batch, 128), device=device)
        own = timed(lambda: pipe(input_ids=prompt, use_chat_template=False, gen_length=gen, block_length=32,
                                 num_inference_steps=steps, temperature=0.0, threshold=0.95, editing_threshold=None,
                                 eos_early_stop=False, mask_token_id=mask, output_type="seq"), calls, device)

        def run(context: str):
            blocks = LLaDA2Blocks(model, mask, shape["vocab_size"], canvas_length=32, context=context)
            return decode_blocks(blocks, prompt, rule, gen_length=gen, steps=steps, spread="block")

        ours = timed(lambda: run("full"), calls, device)
        cached = timed(lambda: run("cached"), calls, device)
        yield {"model": "llada2", "batch": batch, "own": own, "mdsample": ours, "mdsample_cached": cached,
               "ratio": ours["ms_per_step"] / own["ms_per_step"],
               "ratio_cached": cached["ms_per_step"] / own["ms_per_step"]}


def shape_from(path: str | None, default: dict) -> dict:
    if path is None:
        return default
    config = json.loads(Path(path).read_text())
    config = config.get("text_config", config)
    return {k: config[k] for k in default if k in config}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--config", action="append", default=[], help="gemma=PATH or llada2=PATH (config.json)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes on the CPU (smoke test)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    device = torch.device("cpu" if args.tiny else args.device)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    paths = dict(item.split("=", 1) for item in args.config)
    gemma_shape = TINY_GEMMA if args.tiny else shape_from(paths.get("gemma"), GEMMA_26B_A4B)
    llada2_shape = TINY_LLADA2 if args.tiny else shape_from(paths.get("llada2"), LLADA2_MINI)
    gen, steps = (64, 8) if args.tiny else (256, 32)
    rows = []
    torch.manual_seed(0)
    for family in (gemma(gemma_shape, args.batches, device, dtype, gen, steps),
                   llada2(llada2_shape, args.batches, device, dtype, gen, steps)):
        for row in family:
            rows.append(row)
            print(f"{row['model']:16s} batch {row['batch']}: own {row['own']['ms_per_step']:.2f} ms/step, mdsample "
                  f"{row['mdsample']['ms_per_step']:.2f} ms/step ({row['ratio']:.2f}x)", flush=True)
            if args.out:  # after every row, so a run cut short keeps what it measured
                args.out.write_text(json.dumps({"device": str(device), "tiny": args.tiny, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
