"""The house denoiser: a small bidirectional ModernBERT trained with the MDLM objective for each domain.

Why ModernBERT: transformers ships it natively (no ``trust_remote_code``), it is a plain pre-norm encoder with
rotary positions, GLU MLPs and SDPA attention, so the same checkpoint trains fast on a GPU and runs on a laptop.
Canvases are short, so every layer uses global attention (no sliding windows) and no attention mask is passed,
which lets SDPA pick its fastest kernel.

Checkpoints are ``save_pretrained`` directories (``config.json`` + ``model.safetensors`` in float16, to keep the
"small" model under 8 MB). ``mask_token_id`` and ``pad_token_id`` live in ``config.json``, so a directory or a hub
id is all ``load_house_denoiser`` needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import ModernBertConfig, ModernBertForMaskedLM
from transformers.utils import logging as hf_logging

from mdsample.errors import ConfigError, MissingFileError
from mdsample.files import check_model_dir, sha256_file  # noqa: F401 (sha256_file: the trainers import it here)

# hidden, layers, heads, GLU intermediate. "small": ~3.3M params + 257 per vocabulary entry, so float16 weights
# stay under 8 MB for vocabularies up to ~2,700 tokens; "deep" (~3.5M) trades width for the depth that constraint
# propagation (sudoku) needs; "base" (~7.55M) and "base_deep" (~7.3M) are the two shapes that fill a 16 MB float16
# budget (the molecule models; which one wins is measured, see the molecule MODEL_CARD.md); "tiny" (~90k params)
# exists for tests.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (64, 2, 2, 128),
    "small": (256, 4, 4, 704),
    "deep": (192, 8, 6, 512),
    "base": (320, 6, 5, 864),
    "base_deep": (256, 9, 4, 704),
}


def house_config(vocab_size: int, mask_id: int, pad_id: int, max_len: int, size: str = "small") -> ModernBertConfig:
    """A ModernBertConfig for ``ModernBertForMaskedLM`` with global attention everywhere and no dropout."""
    if size not in SIZES:
        raise ConfigError(f"unknown house model size {size!r}; choose one of: {', '.join(SIZES)}")
    if not (0 <= mask_id < vocab_size and 0 <= pad_id < vocab_size):
        raise ConfigError(f"mask_id {mask_id} and pad_id {pad_id} must lie in [0, vocab_size={vocab_size})")
    hidden, layers, heads, intermediate = SIZES[size]
    return ModernBertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_len,
        layer_types=["full_attention"] * layers,
        pad_token_id=pad_id,
        mask_token_id=mask_id,
        bos_token_id=None,
        eos_token_id=None,
        cls_token_id=None,
        sep_token_id=None,
        attn_implementation="sdpa",
    )


def build_house_model(config: ModernBertConfig) -> ModernBertForMaskedLM:
    """A freshly initialised house model (float32, train mode)."""
    return ModernBertForMaskedLM(config)


def save_house_model(model: ModernBertForMaskedLM, out_dir: Path) -> Path:
    """Save ``model`` as float16 safetensors into ``out_dir`` (the model itself is cast); returns the weights file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet():
        model.to(torch.float16).save_pretrained(out_dir)
    return out_dir / "model.safetensors"


class HouseDenoiser:
    """Wraps a ``ModernBertForMaskedLM`` into the Denoiser protocol: float32 logits ``[B, L, V]``, no gradients."""

    def __init__(self, model: ModernBertForMaskedLM):
        self.model = model.eval()
        self.mask_id: int = model.config.mask_token_id
        self.pad_id: int = model.config.pad_token_id
        self.vocab_size: int = model.config.vocab_size

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device: torch.device | str) -> HouseDenoiser:
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=tokens, **conditioning).logits.float()


def load_house_denoiser(
    path_or_hub_id: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> HouseDenoiser:
    """Load a house checkpoint (local ``save_pretrained`` directory or hub id), float32 unless ``dtype`` says otherwise.

    Weights are stored in float16 only to keep files small; computing in float32 by default keeps sampling
    reproducible across devices. Remote code is never executed: the class is fixed to ModernBertForMaskedLM.
    """
    if Path(path_or_hub_id).is_dir():
        check_model_dir(path_or_hub_id)  # a broken file is named before transformers reads it
    try:
        with _quiet():
            model = ModernBertForMaskedLM.from_pretrained(
                str(path_or_hub_id), dtype=dtype or torch.float32, trust_remote_code=False
            )
    except OSError as err:
        if Path(path_or_hub_id).is_dir():  # a local model whose files are unreadable, e.g. a corrupted config.json
            raise ConfigError(f"house model {str(path_or_hub_id)!r} is broken: {_first_line(err)}") from None
        raise MissingFileError(
            f"cannot load house model {str(path_or_hub_id)!r}: not a model directory here, nor reachable on the hub "
            f"({err.__class__.__name__}); train one with `mdsample train` or check the path"
        ) from err
    except (SafetensorError, ValueError, RuntimeError, KeyError) as err:  # truncated or corrupted files
        raise ConfigError(
            f"house model {str(path_or_hub_id)!r} is broken: {_first_line(err)}; re-download or retrain it"
        ) from None
    if getattr(model.config, "mask_token_id", None) is None:
        raise ConfigError(f"{path_or_hub_id!s} is not a house model: its config.json has no mask_token_id")
    return HouseDenoiser(model).to(device)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [err.__class__.__name__])[0]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hide transformers' per-shard progress bars, which are noise for a one-file model."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
