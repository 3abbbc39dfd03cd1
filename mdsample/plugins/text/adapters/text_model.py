"""TextModel: one loaded text MDM with everything the text domain needs to turn strings into canvases and back.

Every family (LLaDA, Dream, masked LMs) differs in how its checkpoint is called, but once loaded they all look the
same to the domain: a Denoiser over ``[B, L]`` canvases that accepts an ``attention_mask[B, L]`` conditioning tensor,
its tokenizer, and the few ids that decide sampling and decoding (mask, pad, stop). Prompts are left-padded so that
every row's generation region starts at the same column, which is what ``MaskedState.gen_start`` assumes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from mdsample.core.denoiser import Denoiser
from mdsample.errors import ConfigError


@dataclass
class TextModel:
    """A text denoiser with its tokenizer and special ids.

    ``stop_ids``: EOS / end-of-turn ids; a completion is cut at the first one. ``prefix_ids`` are put before a
    plain (non-chat) prompt (e.g. a masked LM's [CLS]) when ``add_special_tokens`` is False. ``max_length`` is the
    longest canvas the model supports (None when unbounded); ``family`` names the adapter that loaded it.
    """

    denoiser: Denoiser
    tokenizer: PreTrainedTokenizerBase
    mask_id: int
    pad_id: int
    stop_ids: tuple[int, ...]
    family: str = ""
    add_special_tokens: bool = True
    prefix_ids: tuple[int, ...] = ()
    max_length: int | None = None

    def __post_init__(self) -> None:
        if self.pad_id == self.mask_id:
            raise ConfigError(f"the pad id equals the mask id ({self.mask_id}): padded prompts would read as masked")
        if self.mask_id in self.stop_ids:
            raise ConfigError(f"the mask id {self.mask_id} is also a stop id; the tokenizer's special tokens clash")

    def encode_prompts(self, prompts: list[str], *, chat: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ids [B, P] and attention mask [B, P]; chat=True applies the tokenizer's chat template."""
        if not prompts:
            raise ConfigError("no prompts to encode; give at least one")
        if chat:
            return self.encode_chats([[{"role": "user", "content": p}] for p in prompts])
        encoded = self.tokenizer(list(prompts), add_special_tokens=self.add_special_tokens)["input_ids"]
        return self.left_pad([[*self.prefix_ids, *row] for row in encoded])

    def encode_chats(self, conversations: list[list[dict[str, str]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Conversations (lists of ``{"role", "content"}`` turns) through the chat template, ready for the
        assistant's turn, as left-padded ids and attention mask."""
        if not self.has_chat_template:
            raise ConfigError(f"this {self.family or 'text'} model's tokenizer has no chat template; "
                              "encode the prompt without chat (a base model, or a masked LM)")
        texts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                 for c in conversations]
        return self.encode_rendered(texts)

    def encode_rendered(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts that already carry their special tokens (a rendered chat template), left-padded."""
        return self.left_pad(self.tokenizer(list(texts), add_special_tokens=False)["input_ids"])

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token rows as ids [B, P] padded on the left with ``pad_id``, and their attention mask [B, P]."""
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row) :] = 1
        return ids, mask

    def decode_completion(self, ids: torch.Tensor) -> str:
        """The text of one row's generated ids [G]: cut at the first stop id, special tokens and masks dropped."""
        ids = ids.detach().cpu().long()
        if ids.dim() != 1:
            raise ValueError(f"decode_completion takes one row of ids [G], got shape {tuple(ids.shape)}")
        stops = torch.isin(ids, torch.tensor(self.stop_ids, dtype=torch.long)).nonzero()
        kept = ids[: int(stops[0, 0]) if stops.numel() else ids.numel()]
        kept = kept[kept != self.mask_id]
        return self.tokenizer.decode(kept.tolist(), skip_special_tokens=True)
