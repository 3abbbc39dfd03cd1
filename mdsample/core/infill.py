"""Reasoning-as-infilling (Horvitz et al., arXiv 2510.19990), for any denoiser.

A masked diffusion model can fill any slot, so a reasoning task becomes a template:

    [prompt] [reasoning slots: masked, fixed budget] [delimiter, frozen] [answer slots]

and three things that a left-to-right model cannot do cheaply follow from it:

* **early exit**: H_UB, the sum of the marginal entropies of the answer slots still masked, bounds the answer's
  joint entropy; once it drops below gamma the answer is settled, so the remaining reasoning is skipped and the
  answer slots take their tokens from the same forward pass (no extra NFE);
* **posterior sampling**: freeze a known answer in the answer slots and fill the reasoning: r ~ p(r | c, a);
* **partial-trace scoring**: the mean log-likelihood of a gold answer's tokens in the (re-masked) answer slots, given
  whatever reasoning is on the canvas; it predicts whether that trace leads to the right answer.

Everything works on token ids, so a domain (house character model or a LLaDA tokenizer) only says which ids make up
the prompt, the delimiter and the answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.special import entr

from mdsample.core.denoiser import Denoiser
from mdsample.core.state import MaskedState
from mdsample.core.tokens import TokenChooser
from mdsample.errors import ConfigError


@dataclass
class InfillCanvas:
    """A template canvas: the state to decode, where its answer and reasoning slots are, and the attention mask.

    ``answer[B, A]`` and ``reasoning[B, R]`` are canvas positions (every row has the same slot counts; prompts are
    left-padded with frozen pad tokens, which ``attention_mask`` marks 0 for models that take one).
    """

    state: MaskedState
    answer: torch.Tensor
    reasoning: torch.Tensor
    attention_mask: torch.Tensor


def _ids(seq: Sequence[int] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(seq, dtype=torch.long).flatten()


def infill_canvas(
    prompts: Sequence[Sequence[int] | torch.Tensor],
    *,
    reasoning_length: int,
    delimiter: Sequence[int] | torch.Tensor,
    answer_length: int,
    mask_id: int,
    pad_id: int,
    answers: Sequence[Sequence[int] | torch.Tensor] | None = None,
    reasoning_prefix: Sequence[Sequence[int] | torch.Tensor] | None = None,
    prompt_width: int | None = None,
    device: torch.device | str = "cpu",
) -> InfillCanvas:
    """Build the batched template canvas; every given token (prompt, delimiter, answers, prefixes) is frozen.

    ``answers`` (one per row, exactly ``answer_length`` ids) turns the canvas into posterior sampling.
    ``reasoning_prefix`` (one per row) freezes the start of the reasoning: a partial trace to continue or to score.
    ``prompt_width`` left-pads every prompt to that width (house models see one fixed layout); default: the longest.
    """
    if reasoning_length < 0 or answer_length < 1:
        raise ConfigError(f"need reasoning_length >= 0 and answer_length >= 1, got {reasoning_length}, {answer_length}")
    rows = [_ids(p) for p in prompts]
    if not rows:
        raise ConfigError("infill_canvas needs at least one prompt")
    width = max(len(p) for p in rows) if prompt_width is None else prompt_width
    if any(len(p) > width for p in rows):
        raise ConfigError(f"a prompt is longer than the template's prompt width {width}")
    delim = _ids(delimiter)
    b, r, d, a = len(rows), reasoning_length, len(delim), answer_length
    length = width + r + d + a
    tokens = torch.full((b, length), mask_id, dtype=torch.long)
    frozen = torch.zeros(b, length, dtype=torch.bool)
    attention = torch.ones(b, length, dtype=torch.long)
    for i, p in enumerate(rows):
        pad = width - len(p)
        tokens[i, :pad] = pad_id
        attention[i, :pad] = 0
        tokens[i, pad:width] = p
    tokens[:, width + r : width + r + d] = delim
    frozen[:, width + r : width + r + d] = True
    answer_pos = torch.arange(width + r + d, length).expand(b, a)
    reasoning_pos = torch.arange(width, width + r).expand(b, r)
    if answers is not None:
        given = [_ids(x) for x in answers]
        if len(given) != b or any(len(x) != a for x in given):
            raise ConfigError(f"answers must give one row of exactly answer_length={a} ids per prompt")
        tokens[:, width + r + d :] = torch.stack(given)
        frozen[:, width + r + d :] = True
    if reasoning_prefix is not None:
        if len(reasoning_prefix) != b:
            raise ConfigError("reasoning_prefix must give one (possibly empty) prefix per prompt")
        for i, pre in enumerate(reasoning_prefix):
            pre = _ids(pre)
            if len(pre) > r:
                raise ConfigError(f"a reasoning prefix of {len(pre)} ids exceeds the reasoning budget {r}")
            tokens[i, width : width + len(pre)] = pre
            frozen[i, width : width + len(pre)] = True
    state = MaskedState(tokens.to(device), mask_id, gen_start=width, frozen=frozen.to(device))
    return InfillCanvas(state, answer_pos.to(device), reasoning_pos.to(device), attention.to(device))


def answer_slot_logits(logits: torch.Tensor, answer: torch.Tensor, mask_id: int) -> torch.Tensor:
    """float32 logits ``[R, A, V]`` of the answer slots ``answer[R, A]``, the mask token excluded (never a candidate,
    as in the decode loop): the one view every answer-slot statistic here is computed from."""
    rows = torch.arange(answer.shape[0], device=answer.device).unsqueeze(1)
    slot_logits = logits[rows, answer].float()
    if mask_id < slot_logits.shape[-1]:
        slot_logits[..., mask_id] = float("-inf")
    return slot_logits


def answer_entropy_bound(
    logits: torch.Tensor, tokens: torch.Tensor, answer: torch.Tensor, mask_id: int
) -> torch.Tensor:
    """H_UB per row: the summed marginal entropies (nats) of the answer slots that are still masked.

    ``logits[R, L, V]`` and ``tokens[R, L]`` are this step's rows, ``answer[R, A]`` their answer positions. The mask
    token is never a candidate, so it is left out of the distributions, as the decode loop does.
    """
    entropy = entr(answer_slot_logits(logits, answer, mask_id).softmax(dim=-1)).sum(dim=-1)
    still_masked = tokens.gather(1, answer) == mask_id
    return (entropy * still_masked).sum(dim=1)


@dataclass
class EarlyExit:
    """Answer-block early exit: a row stops as soon as H_UB < ``gamma``.

    At that step the answer slots still masked take the chooser's tokens from the same logits and the row is
    finished; its unfilled reasoning slots stay masked (they were not needed). ``answer[B, A]`` holds the answer
    positions of every row of the decoded state.
    """

    gamma: float
    answer: torch.Tensor

    def __post_init__(self) -> None:
        if not self.gamma > 0:
            raise ConfigError(f"early-exit gamma must be > 0 (nats), got {self.gamma}")

    def apply(
        self,
        logits: torch.Tensor,
        tokens: torch.Tensor,
        rows: torch.Tensor,
        mask_id: int,
        chooser: TokenChooser,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For this step's rows: (which rows exit with work left undone [R] bool, tokens [R, L] with answers filled).

        A row whose canvas is complete after the fill finishes as usual and does not count as exited.
        """
        answer = self.answer[rows]
        exits = answer_entropy_bound(logits, tokens, answer, mask_id) < self.gamma
        slot_logits = answer_slot_logits(logits, answer, mask_id)
        current = tokens.gather(1, answer)
        fill = exits.unsqueeze(1) & (current == mask_id)
        filled = tokens.scatter(1, answer, torch.where(fill, chooser(slot_logits, generator), current))
        return exits & (filled == mask_id).any(dim=1), filled


@torch.no_grad()
def answer_log_likelihood(
    denoiser: Denoiser,
    tokens: torch.Tensor,
    answer: torch.Tensor,
    answer_ids: torch.Tensor,
    *,
    counted: torch.Tensor | None = None,
    conditioning: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mean log p(a*_j | canvas) over the answer slots, with those slots masked: the partial-trace score.

    ``tokens[B, L]`` is any canvas (a partial trace keeps its masked reasoning slots masked); ``answer[B, A]`` the
    answer positions, ``answer_ids[B, A]`` the gold answer's tokens there. ``counted[B, A]`` (default: all) picks the
    slots that enter the mean, e.g. to leave out padding. The mask token is excluded from the distributions. Used as
    the filter score of posterior traces too (there the answer is the one the trace was sampled for).
    """
    mask_id = denoiser.mask_id
    x = tokens.scatter(1, answer, mask_id)
    logits = denoiser(x, **(conditioning or {}))
    logp = answer_slot_logits(logits, answer, mask_id).log_softmax(dim=-1)
    logp = logp.gather(-1, answer_ids.unsqueeze(-1)).squeeze(-1)
    weight = torch.ones_like(logp) if counted is None else counted.to(logp.dtype)
    return (logp * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1)


def slot_pseudo_log_likelihood(
    denoiser: Denoiser,
    tokens: torch.Tensor,
    slots: torch.Tensor,
    *,
    conditioning: dict[str, torch.Tensor] | None = None,
    rows_per_pass: int = 4096,
) -> torch.Tensor:
    """Mean over ``slots[B, S]`` of log p(token at the slot | the canvas with that slot alone masked).

    The step-checking score of a finished reasoning trace: each value is re-predicted from everything around it, so
    a trace with an unsound step (a value that does not follow from its neighbours) scores low even when it ends in
    the right answer, which the answer's likelihood cannot see when the answer copies the trace's last value. The
    B x S single-masked canvases go through the denoiser ``rows_per_pass`` at a time (S forwards' worth of work).
    """
    mask_id = denoiser.mask_id
    b, s = slots.shape
    row = torch.arange(b, device=tokens.device).repeat_interleave(s)
    slot = slots.reshape(-1)
    target = tokens[row, slot]
    out = torch.empty(b * s, device=tokens.device)
    for start in range(0, b * s, rows_per_pass):
        part = slice(start, start + rows_per_pass)
        x = tokens[row[part]].clone()
        x[torch.arange(x.shape[0], device=x.device), slot[part]] = mask_id
        cond = {k: v[row[part]] if torch.is_tensor(v) and v.shape[:1] == (b,) else v
                for k, v in (conditioning or {}).items()}
        logits = denoiser(x, **cond)[torch.arange(x.shape[0], device=x.device), slot[part]].float()
        logits[:, mask_id] = float("-inf")
        out[part] = logits.log_softmax(dim=-1).gather(1, target[part].unsqueeze(1)).squeeze(1)
    return out.view(b, s).mean(dim=1)
