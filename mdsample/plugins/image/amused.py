"""aMUSEd checkpoints (diffusers) as a Denoiser: VQModel + UVit2DModel + a CLIP text encoder.

Loaded from a hub id or a local directory in the pipeline layout (``vqvae/``, ``transformer/``, ``text_encoder/``,
``tokenizer/``, optionally ``scheduler/``). Conditioning follows diffusers' AmusedPipeline: the prompt's
penultimate CLIP hidden states feed cross-attention, its projected ``text_embeds`` are the pooled embedding, and
five micro-conditions (width, height, crop top, crop left, aesthetic score) are appended to it. All of these travel
as batch-first conditioning tensors, so decode() drops finished rows from them like from the canvas.

Classifier-free guidance with weight ``w``: the negative prompt's conditioning runs in the same batch and
``logits = cond + w * (cond - uncond)``, i.e. the pipeline's ``guidance_scale`` is ``1 + w``.
The canvas is the latent grid, row-major; the mask id is the scheduler's ``mask_token_id`` (the transformer's last
vocabulary entry). UVit2DModel predicts the codebook only; the other ids of its vocabulary get logit -inf.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import UVit2DModel, VQModel
from transformers import CLIPTextModelWithProjection, CLIPTokenizer

from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.image import vq

PARTS = ("vqvae", "transformer", "text_encoder", "tokenizer")


def is_amused_dir(path: Path) -> bool:
    return all((path / part).is_dir() for part in PARTS)


class AmusedDenoiser:
    """``tokens[B, h*w] -> logits[B, h*w, V]`` with the conditioning of ``encode_prompts``; V is the transformer's
    vocabulary (codebook, mask, padding), ids past the codebook get probability zero."""

    def __init__(
        self,
        vqvae: VQModel,
        transformer: UVit2DModel,
        text_encoder: CLIPTextModelWithProjection,
        tokenizer: CLIPTokenizer,
        mask_id: int,
        guidance: float = 0.0,
        aesthetic_score: float = 6.0,
    ):
        if guidance < 0:
            raise ConfigError(f"domain.guidance must be >= 0 (0: no classifier-free guidance), got {guidance}")
        self.vqvae = vqvae.eval()
        self.transformer = transformer.eval()
        self.text_encoder = text_encoder.eval()
        self.tokenizer = tokenizer
        self.mask_id = mask_id
        self.codebook_size = transformer.config.codebook_size
        self.vocab_size = max(transformer.config.vocab_size, mask_id + 1)
        self.guidance = guidance
        self.aesthetic_score = aesthetic_score
        self.scale_factor = 2 ** (len(vqvae.config.block_out_channels) - 1)
        self.grid = transformer.config.sample_size

    @property
    def device(self) -> torch.device:
        return self.transformer.device

    @property
    def image_size(self) -> int:
        return self.grid * self.scale_factor

    @torch.no_grad()
    def _embed(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = self.tokenizer(prompts, return_tensors="pt", padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length).input_ids.to(self.device)
        out = self.text_encoder(ids, return_dict=True, output_hidden_states=True)
        return out.hidden_states[-2], out.text_embeds

    def encode_prompts(self, prompts: list[str], negative_prompt: str = "") -> dict[str, torch.Tensor]:
        """Conditioning tensors for one canvas per prompt (with the negative prompt's when guidance is on)."""
        hidden, pooled = self._embed(prompts)
        size = float(self.image_size)
        micro = torch.tensor([size, size, 0.0, 0.0, self.aesthetic_score], device=self.device, dtype=hidden.dtype)
        cond = {"encoder_hidden_states": hidden, "pooled_text_emb": pooled,
                "micro_conds": micro.expand(len(prompts), -1).clone()}
        if self.guidance > 0:
            neg_hidden, neg_pooled = self._embed([negative_prompt])
            cond["negative_encoder_hidden_states"] = neg_hidden.expand(len(prompts), -1, -1).clone()
            cond["negative_pooled_text_emb"] = neg_pooled.expand(len(prompts), -1).clone()
        return cond

    @torch.no_grad()
    def __call__(
        self,
        tokens: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        pooled_text_emb: torch.Tensor,
        micro_conds: torch.Tensor,
        negative_encoder_hidden_states: torch.Tensor | None = None,
        negative_pooled_text_emb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b = tokens.shape[0]
        ids = tokens.view(b, self.grid, self.grid)
        if self.guidance > 0:
            if negative_encoder_hidden_states is None or negative_pooled_text_emb is None:
                raise ConfigError("guidance > 0 needs the negative prompt's conditioning (encode_prompts makes it)")
            out = self.transformer(
                torch.cat([ids, ids]),
                encoder_hidden_states=torch.cat([encoder_hidden_states, negative_encoder_hidden_states]),
                pooled_text_emb=torch.cat([pooled_text_emb, negative_pooled_text_emb]),
                micro_conds=torch.cat([micro_conds, micro_conds]),
            ).float()
            cond, uncond = out.chunk(2)
            logits = cond + self.guidance * (cond - uncond)
        else:
            logits = self.transformer(ids, encoder_hidden_states=encoder_hidden_states,
                                      pooled_text_emb=pooled_text_emb, micro_conds=micro_conds).float()
        logits = logits.flatten(2).transpose(1, 2)
        return F.pad(logits, (0, self.vocab_size - logits.shape[-1]), value=float("-inf"))

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] (aMUSEd's VQ decodes straight into [0, 1])."""
        return vq.decode(self.vqvae, tokens, signed=False)


def _mask_id(source: str, transformer: UVit2DModel) -> int:
    path = Path(source) / "scheduler" / "scheduler_config.json"
    if path.is_file():
        return int(json.loads(path.read_text())["mask_token_id"])
    return int(transformer.config.vocab_size) - 1


def load_amused(source: str, device: torch.device, guidance: float, aesthetic_score: float) -> AmusedDenoiser:
    """Load the four components of an aMUSEd checkpoint (local directory or hub id)."""
    try:
        vqvae = VQModel.from_pretrained(source, subfolder="vqvae")
        transformer = UVit2DModel.from_pretrained(source, subfolder="transformer")
        text_encoder = CLIPTextModelWithProjection.from_pretrained(source, subfolder="text_encoder")
        tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")
    except (OSError, ValueError) as err:
        raise MissingFileError(
            f"cannot load {source!r} as an aMUSEd checkpoint (needs {', '.join(PARTS)}/): "
            f"{' '.join(str(err).split())[:200]}"
        ) from err
    if not vqvae.config.lookup_from_codebook:
        raise ConfigError(f"{source}: its VQModel does not look tokens up in its codebook (lookup_from_codebook)")
    return AmusedDenoiser(vqvae.to(device), transformer.to(device), text_encoder.to(device), tokenizer,
                          _mask_id(source, transformer), guidance, aesthetic_score)
