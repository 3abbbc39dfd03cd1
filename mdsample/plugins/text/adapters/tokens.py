"""Tokenizer loading and the special ids a text run needs: where a completion stops and what pads a prompt.

Chat models end a turn with an end-of-turn token (LLaDA ``<|eot_id|>``, Qwen/Dream ``<|im_end|>``) before, or
instead of, their EOS; both must stop a completion, so the stop set is the EOS ids of the tokenizer and config
plus whichever of the known end-of-turn tokens the vocabulary has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from mdsample.errors import ConfigError
from mdsample.plugins.text.adapters.errors import brief
from mdsample.plugins.text.adapters.remote import TRUST_SWITCH

END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|end|>")


def load_tokenizer(
    model_dir: Path, *, trust_remote_code: bool, fallback: type[PreTrainedTokenizerBase] | None = None
) -> PreTrainedTokenizerBase:
    """The checkpoint's tokenizer; ``fallback`` (a transformers class reading the same files) replaces a tokenizer
    that would need remote code when that is not allowed."""
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
    except ValueError as err:
        if fallback is not None and not trust_remote_code:
            return fallback.from_pretrained(str(model_dir))
        hint = "" if trust_remote_code else f"; if it needs its own code, allow it with {TRUST_SWITCH}"
        raise ConfigError(f"cannot load the tokenizer of {model_dir} ({brief(err)}){hint}") from None
    except OSError as err:
        raise ConfigError(f"{model_dir} has no usable tokenizer files ({brief(err)})") from None


def stop_ids(tokenizer: PreTrainedTokenizerBase, config: dict[str, Any], extra: tuple[int | None, ...] = ()) -> tuple:
    """EOS ids (tokenizer and config) + known end-of-turn tokens in the vocabulary + ``extra``, sorted, unique."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, config.get("eos_token_id"), *extra):
        ids.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int))
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return tuple(sorted(ids))


def pad_id(tokenizer: PreTrainedTokenizerBase, config: dict[str, Any], mask_id: int, stops: tuple[int, ...]) -> int:
    """The prompt padding id: the tokenizer's (or config's) pad token unless it is the mask token, else a stop id.

    Padded positions are never attended to, so any real token serves; it only must not be the mask id.
    """
    for candidate in (tokenizer.pad_token_id, config.get("pad_token_id"), *stops):
        if isinstance(candidate, int) and candidate != mask_id:
            return candidate
    raise ConfigError("the tokenizer defines no pad or EOS token other than the mask token; cannot pad prompts")
