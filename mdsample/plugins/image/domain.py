"""The image domain: class-conditional glyphs from the house model, and aMUSEd checkpoints through diffusers.

Two kinds of model, told apart by their directory:

- the house glyph model (``glyph.json`` + token model + ``vqvae/`` + ``classifier/``; glyph_model.py), shipped in
  ``weights/`` once trained (``mdsample train --domain image``, training.py). Canvases are ``[class token] + 8x8
  codes``; ``--class A`` conditions every row on A, no class gives the classes round-robin over the run (sample i
  gets class i mod C, so any n covers the classes evenly). Metrics: FD-glyph, classifier accuracy, IS-style score.
- aMUSEd (``vqvae/ transformer/ text_encoder/ tokenizer/``, local or a hub id; amused.py). The prompt is
  ``--prompt`` (else ``--class``, else empty); metrics: pixel diversity only (there is no reference set).

MaskGIT is the domain's reference rule: its cosine schedule and choice temperature are set as defaults here, with
12 steps and token temperature 1 as in aMUSEd's pipeline. Outputs: ``images/*.png``, ``grid.png``,
``samples.jsonl`` (output.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mdsample.core.denoiser import Denoiser
from mdsample.core.state import MaskedState
from mdsample.domain import Domain, DomainOptions, Initial, TrainData
from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.image import glyphs
from mdsample.plugins.image.layout import LAYOUT_FILE, GlyphLayout
from mdsample.plugins.image.options import DEFAULTS, DESCRIPTION, TASKS, ImageOptions

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass
class ImageInitial(Initial):
    """Initial canvases plus the denoiser that turns finished canvases into images."""

    denoiser: Any = None


class ImageDomain(Domain):
    name = "image"
    description = DESCRIPTION
    Options = ImageOptions

    def defaults(self) -> dict[str, Any]:
        return DEFAULTS

    def tasks(self) -> list[str]:
        return list(TASKS)

    def load_denoiser(self, options: DomainOptions, device: torch.device) -> Denoiser:
        from mdsample.plugins.image.amused import is_amused_dir, load_amused
        from mdsample.plugins.image.glyph_model import is_glyph_model, load_glyph_model

        opts = image_options(options)
        if opts.model is None:
            if not is_glyph_model(WEIGHTS_DIR):
                raise MissingFileError(
                    f"no shipped image model in {WEIGHTS_DIR} (it is added once trained); train one with "
                    "`mdsample train --domain image --out DIR` and pass --model DIR"
                )
            return load_glyph_model(WEIGHTS_DIR, device, opts.guidance)
        path = Path(opts.model).expanduser()
        if path.is_dir() and is_glyph_model(path):
            return load_glyph_model(path, device, opts.guidance)
        if path.is_dir() and not is_amused_dir(path):
            raise MissingFileError(f"{path} is neither a glyph model ({LAYOUT_FILE}) nor an aMUSEd checkpoint "
                                   "(vqvae/ transformer/ text_encoder/ tokenizer/)")
        if not path.exists() and (opts.model.startswith((".", "/", "~")) or opts.model.count("/") != 1):
            raise MissingFileError(f"model {opts.model!r} is not a directory here, nor a hub id (owner/name)")
        return load_amused(str(path) if path.exists() else opts.model, device, opts.guidance, opts.aesthetic_score)

    def initial_state(
        self, denoiser: Denoiser, options: DomainOptions, n: int, device: torch.device, offset: int = 0
    ) -> Initial:
        opts = image_options(options)
        layout = getattr(denoiser, "layout", None)
        if layout is None:
            prompt = opts.prompt if opts.prompt is not None else (opts.label or "")
            state = MaskedState.blank(n, denoiser.grid**2, denoiser.mask_id, device=device)
            conditioning = denoiser.encode_prompts([prompt] * n, opts.negative_prompt)
            return ImageInitial(state, conditioning, [{"prompt": prompt} for _ in range(n)], denoiser=denoiser)
        if opts.prompt is not None:
            raise ConfigError("the glyph model takes no --prompt; choose a class with --class (e.g. --class A)")
        if opts.label is None:
            labels = (torch.arange(n) + offset) % layout.num_classes
        else:
            labels = torch.full((n,), layout.class_index(opts.label))
        tokens = (labels + layout.codebook_size).unsqueeze(1)
        state = MaskedState.blank(n, layout.grid**2, layout.mask_id, prompt=tokens, device=device)
        requests = [{"label": layout.classes[i], "model": str(denoiser.model_dir)} for i in labels.tolist()]
        return ImageInitial(state, {}, requests, denoiser=denoiser)

    def decode(self, tokens: torch.Tensor, initial: Initial) -> list[Image.Image]:
        denoiser = getattr(initial, "denoiser", None)
        if denoiser is None:
            raise ConfigError("image canvases can only be decoded with the Initial that initial_state returned")
        pixels = denoiser.detokenize(tokens).cpu()
        arrays = (pixels * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arrays]

    def save(self, objects: list[Any], run_dir: Path, initial: Initial) -> list[Path]:
        from mdsample.plugins.image.output import save_images

        return save_images(objects, initial.requests, Path(run_dir))

    def metrics(self, objects: list[Any], options: DomainOptions, initial: Initial) -> dict[str, float]:
        from mdsample.plugins.image import metrics

        opts = image_options(options)
        images = to_tensor(objects)
        if not initial.requests or "label" not in initial.requests[0]:
            return {"pixel_diversity": metrics.pixel_diversity(images)}
        from mdsample.plugins.image.glyph_model import CLASSIFIER_DIR, load_classifier

        model_dir = Path(initial.requests[0]["model"])
        layout = GlyphLayout.load(model_dir / LAYOUT_FILE)
        labels = torch.tensor([layout.class_index(r["label"]) for r in initial.requests])
        reference = glyphs.load_split("eval", layout.classes, opts.reference_variants)
        reference = reference.subset(np.isin(reference.labels, labels.unique().numpy()))
        real = torch.from_numpy(reference.images).unsqueeze(1).float() / 255.0
        out = metrics.glyph_metrics(images, labels, load_classifier(str(model_dir / CLASSIFIER_DIR)), real,
                                    opts.fid_features, opts.inception_weights)
        out["pixel_diversity"] = metrics.pixel_diversity(images)
        return out

    def train_house(self, options: DomainOptions, cfg: Any, out_dir: Path, command: str = "") -> Path:
        from mdsample.plugins.image.training import train_glyph_model

        return train_glyph_model(self, image_options(options), cfg, Path(out_dir), command)

    def train_data(self, options: DomainOptions) -> TrainData:
        from mdsample.plugins.image.glyph_model import load_vqvae
        from mdsample.plugins.image.training import device_of
        from mdsample.plugins.image.vq import encode

        opts = image_options(options)
        if opts.vqvae is None:
            raise ConfigError("image train_data needs a VQ tokenizer: set domain.vqvae=DIR, or run "
                              "`mdsample train --domain image`, which trains one first")
        if not 0.0 <= opts.cond_drop < 1.0:
            raise ConfigError(f"domain.cond_drop must lie in [0, 1), got {opts.cond_drop}")
        vqvae = load_vqvae(Path(opts.vqvae).expanduser(), device_of("auto"))
        layout = self._layout(opts, vqvae)
        rows = {}
        for split, variants in (("train", opts.variants), ("eval", opts.reference_variants)):
            data = glyphs.load_split(split, opts.classes, variants, opts.data_seed)
            codes = encode(vqvae, torch.from_numpy(data.images)).cpu()
            classes = torch.from_numpy(data.labels) + layout.codebook_size
            rows[split] = torch.cat([classes.unsqueeze(1), codes], dim=1)
        train = rows["train"]
        gen = torch.Generator().manual_seed(opts.data_seed)
        dropped = train[torch.randperm(len(train), generator=gen)[: round(opts.cond_drop * len(train))]].clone()
        dropped[:, 0] = layout.null_id
        return TrainData(train=torch.cat([train, dropped]), val=rows["eval"], vocab_size=layout.vocab_size,
                         mask_id=layout.mask_id, pad_id=layout.pad_id, frozen_prefix=1)

    def save_assets(self, options: DomainOptions, model_dir: Path) -> None:
        from mdsample.plugins.image.glyph_model import load_vqvae

        opts = image_options(options)
        if opts.vqvae is None:
            raise ConfigError("the glyph model's assets need its tokenizer: set domain.vqvae=DIR")
        self._layout(opts, load_vqvae(Path(opts.vqvae).expanduser())).save(Path(model_dir) / LAYOUT_FILE)

    @staticmethod
    def _layout(opts: ImageOptions, vqvae: Any) -> GlyphLayout:
        from mdsample.plugins.image.vq import latent_grid

        return GlyphLayout(codebook_size=vqvae.config.num_vq_embeddings, grid=latent_grid(vqvae, glyphs.SIZE),
                           classes=glyphs.check_classes(opts.classes), image_size=glyphs.SIZE)


def image_options(options: DomainOptions) -> ImageOptions:
    """Accept the generic options too (e.g. from a study), filling image defaults."""
    if isinstance(options, ImageOptions):
        return options
    return ImageOptions(model=options.model, prompt=options.prompt, task=options.task, label=options.label,
                        trust_remote_code=options.trust_remote_code)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """PIL images -> float ``[N, C, H, W]`` in [0, 1] (C = 1 for grey images, else 3)."""
    if not images:
        return torch.zeros(0, 1, glyphs.SIZE, glyphs.SIZE)
    grey = all(im.mode == "L" for im in images)
    arrays = np.stack([np.asarray(im if grey else im.convert("RGB")) for im in images])
    x = torch.from_numpy(arrays).float() / 255.0
    return x.unsqueeze(1) if grey else x.permute(0, 3, 1, 2)
