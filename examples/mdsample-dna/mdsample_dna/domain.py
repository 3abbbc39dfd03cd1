"""The ``dna`` domain: promoter-like DNA sequences of 32 bases from a house model trained on synthetic data.

It is a complete third-party domain built only on mdsample's public contract (``mdsample.domain.Domain``): the
shipped model lives in ``weights/`` inside this package, ``mdsample train --domain dna`` regenerates the corpus
(``data``) and trains a new one, ``--prompt`` takes IUPAC templates (``template``), samples are written as FASTA and
scored by ``metrics``. The canvas is the whole sequence (no BOS or padding): every sequence has exactly 32 bases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdsample.core.denoiser import Denoiser
from mdsample.domain import Domain, DomainOptions, Initial, TrainData
from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample_dna import alphabet, data, metrics, template
from mdsample_dna.motifs import LENGTH
from mdsample_dna.options import DEFAULTS, DESCRIPTION, TASKS, DnaOptions

WEIGHTS_DIR = Path(__file__).parent / "weights"
ALPHABET_FILE = "alphabet.json"


class DnaDomain(Domain):
    name = "dna"
    description = DESCRIPTION
    Options = DnaOptions

    def defaults(self) -> dict[str, Any]:
        return DEFAULTS

    def tasks(self) -> list[str]:
        return list(TASKS)

    def load_denoiser(self, options: DomainOptions, device: torch.device) -> Denoiser:
        from mdsample.models.house import load_house_denoiser

        model_dir = WEIGHTS_DIR if options.model is None else Path(options.model).expanduser()
        if options.model is None and not (model_dir / "config.json").is_file():
            raise MissingFileError(f"the shipped DNA model is missing from {model_dir}; reinstall mdsample-dna or "
                                   "train one with `mdsample train --domain dna` and pass it with --model")
        if model_dir.is_dir():
            alphabet.check(model_dir / ALPHABET_FILE)
        denoiser = load_house_denoiser(model_dir if model_dir.is_dir() else options.model, device)
        config = denoiser.model.config
        if (denoiser.vocab_size, denoiser.mask_id, config.max_position_embeddings) != (
            alphabet.VOCAB_SIZE, alphabet.MASK_ID, LENGTH
        ):
            raise ConfigError(f"model {model_dir} is not a DNA house model (vocabulary {denoiser.vocab_size}, mask "
                              f"{denoiser.mask_id}, length {config.max_position_embeddings}; expected "
                              f"{alphabet.VOCAB_SIZE}, {alphabet.MASK_ID}, {LENGTH})")
        return denoiser

    def initial_state(
        self, denoiser: Denoiser, options: DomainOptions, n: int, device: torch.device, offset: int = 0
    ) -> Initial:
        if options.label is not None:
            raise ConfigError("the dna domain has no classes; drop --class (use --prompt for templates)")
        if options.task is not None and options.task not in TASKS:
            raise UnknownChoiceError("dna task", options.task, TASKS)
        state = template.canvas(options.prompt, LENGTH, n, device)
        return Initial(state=state, requests=[{"prompt": options.prompt} for _ in range(n)])

    def decode(self, tokens: torch.Tensor, initial: Initial) -> list[str]:
        return alphabet.decode_rows(tokens)

    def save(self, objects: list[Any], run_dir: Path, initial: Initial) -> list[Path]:
        from mdsample_dna.motifs import gc_content, is_valid

        path = Path(run_dir) / "samples.fasta"
        path.write_text("".join(
            f">sample_{i} gc={gc_content(s):.3f} valid={int(is_valid(s))}\n{s}\n" for i, s in enumerate(objects)
        ))
        return [path]

    def metrics(self, objects: list[Any], options: DomainOptions, initial: Initial) -> dict[str, float]:
        opts = _dna_options(options)
        return metrics.compute(list(objects), opts.kmer, opts.train_rows, opts.data_seed)

    def train_data(self, options: DomainOptions) -> TrainData:
        opts = _dna_options(options)
        if opts.train_rows < 1:
            raise ConfigError(f"domain.train_rows must be >= 1, got {opts.train_rows}")
        train = torch.from_numpy(data.generate(opts.train_rows, data.split_seed(opts.data_seed, "train"))).long()
        val = torch.from_numpy(data.val_rows(opts.data_seed)).long()
        return TrainData(train=train, val=val, vocab_size=alphabet.VOCAB_SIZE, mask_id=alphabet.MASK_ID,
                         pad_id=alphabet.PAD_ID)

    def save_assets(self, options: DomainOptions, model_dir: Path) -> None:
        alphabet.save(Path(model_dir) / ALPHABET_FILE)


def _dna_options(options: DomainOptions) -> DnaOptions:
    """Accept the generic options too (e.g. from a study), filling the DNA defaults."""
    if isinstance(options, DnaOptions):
        return options
    return DnaOptions(model=options.model, prompt=options.prompt, task=options.task, label=options.label,
                      trust_remote_code=options.trust_remote_code)
