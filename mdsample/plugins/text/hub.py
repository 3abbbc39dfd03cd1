"""Text runs on hub models (``--model`` LLaDA / Dream / masked LM): free prompts and the reasoning tasks.

A hub model speaks its own tokenizer, so the house layouts do not apply. Two kinds of request:

* ``--prompt TEXT`` without ``--task``: the prompt (chat template when the tokenizer has one) followed by
  ``domain.gen_length`` masked slots; the completion is cut at the first EOS / end-of-turn token;
* ``--task arithmetic|sudoku``: a reasoning-as-infilling template (core/infill.py) written in the model's tokens,
  ``[question] [domain.reasoning_length slots] " The answer is: " [domain.answer_length slots]``, so early exit,
  posterior sampling and partial-trace scoring work on any text MDM exactly as on the house models.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from mdsample.core.infill import infill_canvas
from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters import TextModel, build_canvas
from mdsample.plugins.text.tasks.base import Problem, Task

DELIMITER = " The answer is: "


class HubDenoiser:
    """The adapter's denoiser plus the TextModel it came from (tokenizer and special ids) for the domain.

    Every other attribute is the adapter's denoiser's: a native LLaDA / Dream module's KV-cache calls (``new_cache``,
    ``prefill``, ``cached``, ``peek``), ``capturable`` and ``compilable``, so that ``decode.cache``, the captured step
    and ``decode.compile`` reach it from the command line as they do when it is decoded directly.
    """

    def __init__(self, text_model: TextModel):
        self.text_model = text_model
        self.mask_id = text_model.mask_id
        self.vocab_size = text_model.denoiser.vocab_size

    def __call__(self, tokens: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        return self.text_model.denoiser(tokens, **conditioning)

    def __getattr__(self, name: str) -> Any:
        if name == "text_model":  # not set yet (an object being copied or unpickled)
            raise AttributeError(name)
        return getattr(self.text_model.denoiser, name)


class HubBlockDenoiser(HubDenoiser):
    """A block-diffusion hub model (LLaDA2, DiffusionGemma): it shows the BlockDenoiser attributes (read through
    ``HubDenoiser``), so decode() runs the outer loop over canvases (core/blocks.py) with the family's settings;
    ``canvas_length`` is also written through to the model."""

    @property
    def canvas_length(self) -> int:
        return self.text_model.denoiser.canvas_length

    @canvas_length.setter
    def canvas_length(self, value: int) -> None:
        self.text_model.denoiser.canvas_length = value


def hub_denoiser(text_model: TextModel) -> HubDenoiser:
    """The domain's denoiser for a loaded hub model: block-diffusion families get the outer loop."""
    return HubBlockDenoiser(text_model) if hasattr(text_model.denoiser, "open") else HubDenoiser(text_model)


def question(task: Task, problem: Problem) -> str:
    """The task's problem as a natural-language question for a general text model."""
    if task.name == "sudoku":
        return ("Solve this sudoku. The grid is given row by row, 81 characters, '.' for blanks:\n"
                f"{problem.prompt}\nAnswer with the 81 digits of the solved grid.")
    return f"What is {problem.prompt.rstrip('=')}? Reason step by step."


def answer_text(task: Task, text: str) -> str:
    """The answer a general model wrote: the first number (arithmetic) or the first 81 digits (sudoku)."""
    if task.name == "sudoku":
        return "".join(re.findall(r"[1-9]", text))[:81]
    found = re.search(r"-?\d[\d,]*", text)
    return found[0].replace(",", "") if found else text.strip()


def task_canvas(model: TextModel, task: Task, problems: list[Problem], reasoning_length: int, answer_length: int,
                device: torch.device) -> tuple[MaskedState, torch.Tensor, dict[str, torch.Tensor]]:
    """The template canvas of ``problems`` in the model's tokens: state, answer positions, conditioning."""
    tok = model.tokenizer
    chat = bool(getattr(tok, "chat_template", None))
    prompts = []
    for p in problems:
        ids, mask = model.encode_prompts([question(task, p)], chat=chat)
        prompts.append(ids[0][mask[0].bool()])
    delimiter = tok(DELIMITER, add_special_tokens=False)["input_ids"]
    canvas = infill_canvas(prompts, reasoning_length=reasoning_length, delimiter=delimiter,
                           answer_length=answer_length, mask_id=model.mask_id, pad_id=model.pad_id, device=device)
    conditioning = {"attention_mask": canvas.attention_mask} if (canvas.attention_mask == 0).any() else {}
    return canvas.state, canvas.answer, conditioning


def question_canvas(model: TextModel, task: Task, problems: list[Problem], gen_length: int,
                    device: torch.device) -> tuple[MaskedState, dict[str, torch.Tensor]]:
    """Each problem's question as a prompt followed by ``gen_length`` slots (block-diffusion models, which generate
    canvas by canvas and so cannot hold a template's frozen delimiter and answer slots)."""
    chat = bool(getattr(model.tokenizer, "chat_template", None))
    ids, mask = model.encode_prompts([question(task, p) for p in problems], chat=chat)
    canvas = build_canvas(ids.to(device), mask.to(device), gen_length, model.mask_id)
    return MaskedState(canvas.tokens, model.mask_id, gen_start=canvas.gen_start), canvas.conditioning()


def prompt_canvas(model: TextModel, prompt: str, n: int, gen_length: int,
                  device: torch.device) -> tuple[MaskedState, dict[str, torch.Tensor]]:
    """``n`` copies of a free prompt followed by ``gen_length`` masked slots."""
    ids, mask = model.encode_prompts([prompt] * n, chat=bool(getattr(model.tokenizer, "chat_template", None)))
    canvas = build_canvas(ids.to(device), mask.to(device), gen_length, model.mask_id)
    if model.max_length is not None and canvas.tokens.shape[1] > model.max_length:
        raise ConfigError(f"prompt + domain.gen_length = {canvas.tokens.shape[1]} tokens exceeds the model's "
                          f"{model.max_length}; shorten the prompt or lower domain.gen_length")
    return MaskedState(canvas.tokens, model.mask_id, gen_start=canvas.gen_start), canvas.conditioning()


def decode_rows(model: TextModel, tokens: torch.Tensor, gen_start: int, answer: torch.Tensor | None, task: Task | None,
                problems: list[Problem], reasoning_length: int) -> list[dict[str, Any]]:
    """Objects of a hub run: the completion, and for a task its reasoning, answer and correctness."""
    out = []
    tokens = tokens.cpu()
    for i, row in enumerate(tokens):
        if task is None:
            out.append({"prompt": problems[i].prompt, "completion": model.decode_completion(row[gen_start:])})
            continue
        if answer is None:  # a question prompt (question_canvas): the answer is read from the completion
            completion = model.decode_completion(row[gen_start:])
            given = answer_text(task, completion)
            out.append({"prompt": problems[i].prompt, "completion": completion, "answer": given,
                        "gold": problems[i].answer, "correct": task.correct(problems[i], given)})
            continue
        reasoning = model.decode_completion(row[gen_start : gen_start + reasoning_length])
        raw = model.decode_completion(row[int(answer[i, 0]) :])
        given = answer_text(task, raw)
        out.append({"prompt": problems[i].prompt, "completion": f"{reasoning}{DELIMITER}{raw}", "reasoning": reasoning,
                    "answer": given, "gold": problems[i].answer, "correct": task.correct(problems[i], given)})
    return out
