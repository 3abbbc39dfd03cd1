"""The molecule domain: unconditional and template-conditioned generation of drug-like molecules (MOSES).

Representations (``Options.representation``): ``smiles`` (atom-level regex tokens) and ``selfies`` (selfies
symbols); see ``tokenizers``. Canvases are ``[BOS] tokens [EOS] [PAD ...]`` with BOS frozen (``canvas``). Canvas
lengths were chosen from MOSES train as the smallest multiple of 8 covering at least 99.9% of it
(``vocab_build.canvas_length``; checked by tests/molecule/test_reference.py against ``reference/lengths.json``):

- smiles:  L = 56, covering 100.00% of MOSES train (1,584,663 molecules; the longest has 54 tokens)
- selfies: L = 56, covering 99.9999% of MOSES train (all but one molecule, of 55 tokens)

Prompts (``Options.prompt``) are infill / prefix templates such as ``CC(=O)N{8}`` or ``prefix:c1ccccc1``; see
``prompt`` for the syntax. Metrics are MOSES's (``metrics``) against reference data shipped in ``reference/``, so a
run needs neither the network nor prepared data; only training needs ``mdsample data --domain molecule``.
"""

from __future__ import annotations

import copy
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mdsample.core.denoiser import Denoiser
from mdsample.domain import Domain, DomainOptions, Initial, TrainData
from mdsample.errors import ConfigError, MissingFileError, UnknownChoiceError
from mdsample.plugins.molecule import prompt, reference
from mdsample.plugins.molecule.canvas import decode_row
from mdsample.plugins.molecule.corpus import encode_split
from mdsample.plugins.molecule.options import DEFAULT_REPRESENTATION, DEFAULTS, DESCRIPTION, TASKS, MoleculeOptions
from mdsample.plugins.molecule.tokenizers import REPRESENTATIONS, Vocab

WEIGHTS_DIR = Path(__file__).parent / "weights"
VOCAB_FILE = "vocab.json"


@dataclass
class MoleculeInitial(Initial):
    """Initial canvases plus the vocabulary they are written in, which ``decode`` needs."""

    vocab: Vocab | None = None


class MoleculeDomain(Domain):
    name = "molecule"
    description = DESCRIPTION
    Options = MoleculeOptions

    def defaults(self) -> dict[str, Any]:
        return copy.deepcopy(DEFAULTS)

    def tasks(self) -> list[str]:
        return list(TASKS)

    def _vocab(self, options: MoleculeOptions, model_dir: Path | None = None) -> Vocab:
        """The vocabulary of a model directory (its vocab.json, which must agree with an explicit representation),
        else the shipped one of the requested representation (None: DEFAULT_REPRESENTATION)."""
        if options.representation is not None and options.representation not in REPRESENTATIONS:
            raise UnknownChoiceError("representation", options.representation, REPRESENTATIONS)
        if model_dir is not None and (model_dir / VOCAB_FILE).is_file():
            vocab = Vocab.load(model_dir / VOCAB_FILE)
            if options.representation not in (None, vocab.representation):
                raise ConfigError(
                    f"model {model_dir} was trained on {vocab.representation}; "
                    f"set representation={vocab.representation}"
                )
            return vocab
        return reference.vocab(options.representation or DEFAULT_REPRESENTATION)

    def load_denoiser(self, options: DomainOptions, device: torch.device) -> Denoiser:
        from mdsample.models.house import load_house_denoiser

        opts = _molecule_options(options)
        if opts.representation is not None and opts.representation not in REPRESENTATIONS:
            raise UnknownChoiceError("representation", opts.representation, REPRESENTATIONS)
        if opts.model is None:
            model_dir = WEIGHTS_DIR / (opts.representation or DEFAULT_REPRESENTATION)
            if not (model_dir / "config.json").is_file():
                raise MissingFileError(
                    f"no shipped molecule model in {model_dir}; train one with "
                    f"`mdsample train --domain molecule` and pass its directory as the model"
                )
        else:
            model_dir = Path(opts.model).expanduser()
        denoiser = load_house_denoiser(model_dir if model_dir.exists() else opts.model, device)
        vocab = self._vocab(opts, model_dir if model_dir.is_dir() else None)
        if (denoiser.vocab_size, denoiser.mask_id) != (len(vocab), vocab.mask_id):
            raise ConfigError(
                f"model {opts.model or model_dir} (vocab {denoiser.vocab_size}, mask {denoiser.mask_id}) "
                f"does not match "
                f"the {vocab.representation} vocabulary (size {len(vocab)}, mask {vocab.mask_id})"
            )
        denoiser.vocab = vocab
        prompt.parse(opts.prompt, vocab)  # a bad template fails here, before the run writes anything
        return denoiser

    def initial_state(
        self, denoiser: Denoiser, options: DomainOptions, n: int, device: torch.device, offset: int = 0
    ) -> Initial:
        opts = _molecule_options(options)
        vocab = getattr(denoiser, "vocab", None) or self._vocab(opts)
        if denoiser.mask_id != vocab.mask_id:
            raise ConfigError(f"denoiser mask id {denoiser.mask_id} differs from the vocabulary's {vocab.mask_id}")
        state = prompt.canvas(prompt.parse(opts.prompt, vocab), vocab, n, device)
        request = {"representation": vocab.representation, "prompt": opts.prompt}
        return MoleculeInitial(state=state, requests=[dict(request) for _ in range(n)], vocab=vocab)

    def decode(self, tokens: torch.Tensor, initial: Initial) -> list[str]:
        vocab = getattr(initial, "vocab", None) or reference.vocab(initial.requests[0]["representation"])
        return [decode_row(row, vocab) for row in tokens.cpu().tolist()]

    # RDKit is imported only by save() and metrics(), so training (tokens only) runs where RDKit is not installed.
    def save(self, objects: list[Any], run_dir: Path, initial: Initial) -> list[Path]:
        _require_rdkit("output (.smi and validity)")
        from mdsample.plugins.molecule.output import save_samples

        return save_samples(objects, Path(run_dir))

    def metrics(self, objects: list[Any], options: DomainOptions, initial: Initial) -> dict[str, float]:
        _require_rdkit("metrics")
        from mdsample.plugins.molecule.metrics import compute

        return compute(objects)

    def train_data(self, options: DomainOptions) -> TrainData:
        opts = _molecule_options(options)
        vocab = self._vocab(opts)
        train, val = (torch.from_numpy(encode_split(s, vocab, opts.data_dir)) for s in ("train", "test"))
        return TrainData(train=train, val=val, vocab_size=len(vocab), mask_id=vocab.mask_id, pad_id=vocab.pad_id,
                         frozen_prefix=1)

    def save_assets(self, options: DomainOptions, model_dir: Path) -> None:
        self._vocab(_molecule_options(options)).save(Path(model_dir) / VOCAB_FILE)


def _require_rdkit(what: str) -> None:
    """RDKit comes with the molecule extra; without it a run ends in one line naming the extra, not a traceback."""
    if importlib.util.find_spec("rdkit") is None:
        raise ConfigError(f"the molecule domain's {what} needs RDKit: pip install 'mdsample[molecule]' (decoding and "
                          "`mdsample train` work without it)")


def _molecule_options(options: DomainOptions) -> MoleculeOptions:
    """Accept the generic options too (e.g. from a study), filling molecule defaults."""
    if isinstance(options, MoleculeOptions):
        return options
    return MoleculeOptions(model=options.model, prompt=options.prompt, task=options.task,
                           trust_remote_code=options.trust_remote_code)
