"""Block diffusion: an outer loop over canvases, each denoised by the inner loop against the model's causal context.

Block-diffusion models (DiffusionGemma, LLaDA2) generate a fixed-size canvas at a time. The prompt and every finished
canvas form the context, which the model reads causally (DiffusionGemma's encoder fills a KV cache with it); the
current canvas is denoised bidirectionally against that context. So the outer loop only has to:

1. hand the context to the model (``BlockDenoiser.open``), which returns a Denoiser for the next canvas and the
   per-row conditioning it needs (decode() subsets it to the rows still open, as for any conditioning);
2. build the canvas: uncommitted slots (mask tokens, or uniform noise) after any prompt tokens that fall inside it,
   which are frozen (LLaDA2 tiles absolute positions, so its first canvas may start inside the prompt);
3. run the inner loop on it: decode() with any rule (commit once, optionally with post-mask editing), or refine()
   (DiffusionGemma's accept-and-renoise sampler);
4. append the canvas to the context; a row that has produced a stop id is finished, and once every row is the
   outer loop ends. Tokens after a row's first stop id become ``pad_id``.

Rows with different prompt lengths are left-padded; the model hides padded context positions with the attention
mask it receives. decode() hands a BlockDenoiser to ``decode_state`` here, so every caller of decode (the CLI, the
API, studies) runs block-diffusion models without knowing; ``steps`` and ``block_length`` of its schedule then mean
steps in total (spread evenly over the canvases) and the canvas length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from mdsample.core.denoiser import Denoiser
from mdsample.core.loop import Editing, decode
from mdsample.core.reselect import Reselect, refine
from mdsample.core.rules.base import Rule
from mdsample.core.schedule import BlockSchedule
from mdsample.core.state import MaskedState, noise
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError


@runtime_checkable
class BlockDenoiser(Protocol):
    """A block-diffusion model: ``open(context[B, P], attention_mask[B, P], fresh) -> (Denoiser, conditioning)``
    for the canvas of ``canvas_length`` positions that follows the context.

    ``corruption`` is "absorbing" (canvas slots hold ``mask_id``) or "uniform" (they hold noise; ``mask_id`` -1);
    ``aligned`` says whether canvases tile absolute positions from 0 (LLaDA2) or start right after the prompt
    (DiffusionGemma). A model may keep the context in a causal KV cache between calls: every call extends the
    previous context by the last canvas; ``fresh`` marks the first canvas of a generation (drop any cache).

    A model may also carry its family's sampling settings, which decode_state uses: ``editing`` (Editing or None),
    ``reselect`` (Reselect or None: run refine() instead of commit-once decode), ``spread`` and ``stop_ids``.
    """

    vocab_size: int
    mask_id: int
    corruption: str
    canvas_length: int
    aligned: bool

    def open(self, context: torch.Tensor, attention_mask: torch.Tensor, fresh: bool) -> tuple[Denoiser, dict]: ...


@dataclass
class BlockResult:
    """``tokens[B, P + gen_length]`` (prompt then generation), NFE per row, the NFE at which each generated position
    was committed (-1: never, e.g. after a row stopped), and how many canvases ran."""

    tokens: torch.Tensor
    gen_start: int
    nfe: torch.Tensor
    commit_step: torch.Tensor
    canvases: int

    def generated(self) -> torch.Tensor:
        return self.tokens[:, self.gen_start :]


@torch.no_grad()
def decode_blocks(
    model: BlockDenoiser,
    prompt: torch.Tensor,
    rule: Rule,
    *,
    gen_length: int,
    steps: int,
    attention_mask: torch.Tensor | None = None,
    chooser: TokenChooser | None = None,
    generator: torch.Generator | None = None,
    stats_dtype: torch.dtype = torch.float32,
    confidence: str = "drawn",
    editing: Editing | None = None,
    reselect: Reselect | None = None,
    spread: str = "masked",
    stop_ids: tuple[int, ...] = (),
    pad_id: int | None = None,
) -> BlockResult:
    """Generate ``gen_length`` tokens after ``prompt[B, P]`` canvas by canvas, ``steps`` steps per canvas at most.

    ``reselect`` runs DiffusionGemma's accept-and-renoise sampler on uniform canvases instead of commit-once decode;
    ``editing`` and ``spread`` apply to decode (core/loop.py, core/schedule.py).
    """
    if gen_length < 1:
        raise ConfigError(f"gen_length must be >= 1, got {gen_length}")
    if reselect is not None and (model.corruption != "uniform" or editing is not None):
        raise ConfigError("the accept-and-renoise sampler needs a uniform-corruption model and no post-mask editing")
    batch, plen = prompt.shape
    device = prompt.device
    size = model.canvas_length
    first = (plen // size) * size if model.aligned else plen
    count = -(-(plen + gen_length - first) // size)
    x = prompt
    mask = torch.ones_like(prompt) if attention_mask is None else attention_mask.to(prompt.device)
    nfe = torch.zeros(batch, dtype=torch.long, device=device)
    stopped = torch.zeros(batch, dtype=torch.bool, device=device)
    marks = torch.full((batch, first + count * size), -1, dtype=torch.long, device=device)
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    ran = 0
    for index in range(count):
        start = first + index * size
        denoiser, conditioning = model.open(x[:, :start], mask[:, :start], fresh=index == 0)
        carried = x[:, start:plen]
        slots = size - carried.shape[1]
        if model.corruption == "uniform":
            fresh = noise((batch, slots), model.vocab_size, device, generator)
        else:
            fresh = torch.full((batch, slots), model.mask_id, dtype=torch.long, device=device)
        frozen = torch.zeros(batch, size, dtype=torch.bool, device=device)
        frozen[:, : carried.shape[1]] = True
        state = MaskedState(torch.cat([carried, fresh], dim=1), model.mask_id, frozen=frozen,
                            corruption=model.corruption)
        if reselect is not None:
            refine(denoiser, state, rule, steps=steps, settings=reselect, conditioning=conditioning,
                   generator=generator)
        else:
            decode(denoiser, state, rule, schedule=BlockSchedule(steps=steps, spread=spread), chooser=chooser,
                   conditioning=conditioning, generator=generator, stats_dtype=stats_dtype, confidence=confidence,
                   editing=editing, capture="off")
        fresh_marks = torch.where(state.commit_step >= 0, state.commit_step + nfe.unsqueeze(1), -1)
        marks[:, start : start + size] = torch.where(stopped.unsqueeze(1), -1, fresh_marks)
        nfe += state.nfe * ~stopped
        x = torch.cat([x[:, :start], state.tokens], dim=1)
        mask = torch.cat([mask[:, :start], torch.ones_like(state.tokens)], dim=1)
        ran += 1
        if stops.numel():
            stopped |= torch.isin(x[:, plen:], stops).any(dim=1)
            if bool(stopped.all()):
                break
    tokens = x[:, : plen + gen_length]
    if stops.numel() and pad_id is not None:
        tail = tokens[:, plen:]
        after = torch.isin(tail, stops).long().cumsum(dim=1) - torch.isin(tail, stops).long() > 0
        tokens = torch.cat([tokens[:, :plen], tail.masked_fill(after, pad_id)], dim=1)
    return BlockResult(tokens, plen, nfe, marks[:, plen : plen + gen_length], ran)


def decode_state(model: BlockDenoiser, state: MaskedState, rule: Rule, *, schedule: BlockSchedule | None,
                 conditioning: dict[str, torch.Tensor], editing: Editing | None, **options) -> MaskedState:
    """decode() of a full canvas ``state`` (prompt then uncommitted slots) on a block-diffusion model, in place.

    The prompt is ``state.tokens[:, :gen_start]`` (its padding hidden by ``conditioning["attention_mask"]``); the
    schedule's ``steps`` are spread evenly over the canvases (None: the model's ``default_steps`` per canvas, else one
    token per step); its ``block_length`` must be None or the canvas length, unless the model is ``resizable`` (its
    canvas length is a sampling choice, as LLaDA2's block length is). ``options`` are decode_blocks' (chooser,
    generator, stats_dtype, confidence).
    """
    schedule = schedule or BlockSchedule()
    size = model.canvas_length
    if schedule.block_length is not None and schedule.block_length != size:
        if not getattr(model, "resizable", False):
            raise ConfigError(f"this block-diffusion model denoises canvases of {size} tokens; leave "
                              f"decode.block_length unset or set it to {size}")
        size = model.canvas_length = schedule.block_length
    first = (state.gen_start // size) * size if model.aligned else state.gen_start
    count = -(-(state.length - first) // size)
    default = getattr(model, "default_steps", None) or size
    steps = default if schedule.steps is None else max(1, schedule.steps // count)
    mask = conditioning.get("attention_mask")
    result = decode_blocks(
        model, state.tokens[:, : state.gen_start], rule, gen_length=state.gen_length, steps=steps,
        attention_mask=None if mask is None else mask[:, : state.gen_start],
        editing=editing or getattr(model, "editing", None), reselect=getattr(model, "reselect", None),
        spread=getattr(model, "spread", schedule.spread), stop_ids=tuple(getattr(model, "stop_ids", ())), **options,
    )
    state.tokens.copy_(result.tokens)
    if state.uniform:
        state.uncommitted.zero_()
    state.nfe += result.nfe
    state.commit_step[:, state.gen_start :] = result.commit_step
    state.finished = torch.ones_like(state.finished)
    return state
