"""DiffusionGemma (google/diffusiongemma-*) through transformers' own ``DiffusionGemmaForBlockDiffusion``.

DiffusionGemma has no mask token: it is a uniform-corruption block-diffusion encoder-decoder. A causal encoder reads
the prompt and every finished canvas into a KV cache once; a bidirectional decoder denoises a canvas of
``config.canvas_length`` noise tokens against that cache, self-conditioned on the previous step's logits. So it runs
as a BlockDenoiser (core/blocks.py) whose canvas denoiser declares ``self_conditioning``: "masked" positions are the
uncommitted ones, and every rule reads them as it reads masked positions of LLaDA.

By default a canvas is denoised with the model's own sampler semantics (core/reselect.py: accept and renoise, linear
temperature schedule, adaptive stop; settings from the checkpoint's generation config), which with the ``eb`` rule is
transformers' ``generate``. ``reselect=None`` runs commit-once decode instead (diffusers' uniform mode).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mdsample.core.reselect import Reselect
from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters.errors import brief
from mdsample.plugins.text.adapters.text_model import TextModel
from mdsample.plugins.text.adapters.tokens import load_tokenizer, pad_id, stop_ids

NO_MASK = -1
"""The mask id of a uniform-corruption model: it has none."""


class GemmaCanvas:
    """The Denoiser of one canvas: all rows run through the decoder against the shared encoder cache (the cache
    holds every row, so rows the loop has finished are filled with any tokens and their outputs dropped)."""

    self_conditioning = True

    def __init__(self, blocks: GemmaBlocks, mask_mapping: dict, positions: torch.Tensor):
        self.blocks, self.mask_mapping, self.positions = blocks, mask_mapping, positions
        self.mask_id, self.vocab_size = NO_MASK, blocks.vocab_size

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, rows: torch.Tensor,
                 self_conditioning: torch.Tensor | None = None) -> torch.Tensor:
        blocks = self.blocks
        batch = blocks.batch
        full = rows.numel() == batch
        canvas = tokens if full else tokens.new_zeros((batch, tokens.shape[1])).index_copy(0, rows, tokens)
        previous = None
        if self_conditioning is not None:
            previous = self_conditioning.to(blocks.embedding_dtype)
            if not full:
                previous = previous.new_zeros((batch, *previous.shape[1:])).index_copy(0, rows, previous)
        logits = blocks.model(decoder_input_ids=canvas, self_conditioning_logits=previous,
                              decoder_attention_mask=self.mask_mapping, decoder_position_ids=self.positions,
                              **{blocks.cache_keyword: blocks.cache}).logits
        return logits if full else logits[rows]


class GemmaBlocks:
    """A DiffusionGemmaForBlockDiffusion as a BlockDenoiser: uniform canvases right after the prompt; the context
    goes through the encoder into a DynamicCache, each token once (``fresh``: a new generation, a new cache)."""

    corruption = "uniform"
    aligned = False
    mask_id = NO_MASK

    def __init__(self, model: torch.nn.Module, *, reselect: Reselect | None = None, stop_ids: tuple[int, ...] = (),
                 default_steps: int | None = None):
        self.model = model.eval()
        self.default_steps = default_steps
        self.canvas_length = int(model.config.canvas_length)
        self.text_config = model.config.get_text_config(decoder=True)
        self.vocab_size = int(self.text_config.vocab_size)
        self.embedding_dtype = model.model.decoder.embed_tokens.weight.dtype
        self.reselect, self.stop_ids = reselect, stop_ids
        # transformers 5.24 renamed the KV cache argument ``past_key_values`` (5.23) to ``cache``
        decoder = inspect.signature(model.model.decoder.forward).parameters
        self.cache_keyword = "cache" if "cache" in decoder else "past_key_values"
        self.cache = None
        self.cached = 0
        self.batch = 0

    @torch.no_grad()
    def open(self, context: torch.Tensor, attention_mask: torch.Tensor, fresh: bool) -> tuple[GemmaCanvas, dict]:
        from transformers import DynamicCache

        batch, length = context.shape
        if fresh:
            self.cache, self.cached, self.batch = DynamicCache(config=self.text_config), 0, batch
        mask = attention_mask.bool()
        positions = torch.arange(self.cached, length, device=context.device).unsqueeze(0)
        encoder = self.model.model.encoder
        cache = {self.cache_keyword: self.cache}
        mapping = encoder.create_masks_for_generate(
            config=self.model.config, inputs_embeds=torch.empty((batch, length - self.cached, 0), device=context.device,
                                                                dtype=self.embedding_dtype),
            attention_mask=mask, position_ids=positions, **cache)
        encoder(input_ids=context[:, self.cached :].contiguous(), attention_mask=mapping, position_ids=positions,
                **cache)
        self.cached = length
        decoder_mask = self.model.model.decoder.create_diffusion_decoder_attention_mask(
            config=self.model.config, inputs_embeds=torch.empty((batch, self.canvas_length, 0), device=context.device),
            decoder_attention_mask=F.pad(mask, (0, self.canvas_length), value=True), **cache)
        canvas_positions = torch.arange(length, length + self.canvas_length, device=context.device).unsqueeze(0)
        rows = torch.arange(batch, device=context.device)
        return GemmaCanvas(self, decoder_mask, canvas_positions), {"rows": rows}


def generation_settings(model: torch.nn.Module) -> tuple[Reselect, int]:
    """The checkpoint's own sampler settings and denoising steps per canvas (generation_config.json; transformers'
    defaults where unset)."""
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import DiffusionGemmaGenerationConfig

    defaults = DiffusionGemmaGenerationConfig._get_default_generation_params()
    given = getattr(model, "generation_config", None)

    def pick(name: str):
        value = getattr(given, name, None)
        return defaults[name] if value is None else value

    settings = Reselect(t_max=float(pick("t_max")), t_min=float(pick("t_min")),
                        stability=int(pick("stability_threshold")), confidence=pick("confidence_threshold"))
    return settings, int(pick("max_denoising_steps"))


def load(model_dir: Path, config: dict[str, Any], *, trust_remote_code: bool, device: torch.device,
         dtype: torch.dtype, impl: str) -> TextModel:
    """A DiffusionGemma checkpoint as a TextModel whose denoiser is a GemmaBlocks (transformers' classes; no
    remote code, so ``impl`` and ``trust_remote_code`` do not apply)."""
    from transformers import DiffusionGemmaForBlockDiffusion

    if impl != "native":
        raise ConfigError("DiffusionGemma runs through transformers' own classes, never remote code: use "
                          "domain.impl=native")
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one line per run on stderr, not a loading bar
    try:
        model = DiffusionGemmaForBlockDiffusion.from_pretrained(str(model_dir), dtype=dtype).to(device)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load the DiffusionGemma checkpoint {model_dir} ({brief(err)})") from None
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    tokenizer = load_tokenizer(model_dir, trust_remote_code=False)
    stops = stop_ids(tokenizer, config.get("text_config") or config)
    settings, steps = generation_settings(model)
    return TextModel(
        denoiser=GemmaBlocks(model, reselect=settings, stop_ids=stops, default_steps=steps),
        tokenizer=tokenizer,
        mask_id=NO_MASK,
        pad_id=pad_id(tokenizer, config, NO_MASK, stops),
        stop_ids=stops,
        family="diffusion_gemma",
        max_length=(config.get("text_config") or {}).get("max_position_embeddings"),
    )
