"""``lm_eval --model mdsample``: any mdsample text model and rule as an lm-evaluation-harness model.

``--model_args model=ID_OR_PATH,sampler=klass,sampler.kl_threshold=0.01,decode.steps=256``: ``model`` is a hub id
or a local checkpoint (LLaDA, Dream, masked LMs; omitted: the shipped house model of ``domain.task``, default
arithmetic), ``sampler`` a selection rule, and every other key is an mdsample run-config key (``decode.*``,
``sampler.*``, ``domain.*``, ``seed``), checked exactly as the ``mdsample`` command checks it. The adapter's own
keys: ``gen_length`` (default: each request's ``max_gen_toks``), ``mc_num`` (Monte Carlo samples per loglikelihood,
default 128), ``mc_batch_size`` (default 32) and ``greedy_check`` (compute loglikelihood's ``is_greedy``, default
false as in LLaDA's evaluation).

* ``generate_until``: requests are grouped by stop sequences and generation length and decoded ``batch_size`` at a
  time through the same decode loop as ``mdsample`` runs (left-padded prompts, one canvas per batch); each
  completion is cut at the first stop sequence. With ``--apply_chat_template`` the harness renders prompts through
  ``apply_chat_template`` (the tokenizer's template) and they are encoded as they are.
* ``loglikelihood``: LLaDA's Monte Carlo estimate of log p(continuation | context): each sample masks a number of
  continuation tokens l (stratified over the batch, uniform in 1..L) at random positions and scores the masked
  tokens' cross-entropy weighted by L / l; the estimate is minus the mean over ``mc_num`` samples. ``is_greedy``
  decodes the continuation one token per step by confidence and compares (``greedy_check=true``).
* Several processes (``accelerate launch -m lm_eval ...`` or torchrun): each process takes GPU ``LOCAL_RANK``
  modulo the visible GPUs (as a study's processes do); the harness deals the requests out by
  ``rank``/``world_size`` and gathers through the methods below.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
import torch.distributed as dist
from lm_eval.api.model import LM
from lm_eval.api.registry import model_registry

from mdsample import plugin_manager
from mdsample.api import Decoder, resolve_device
from mdsample.config import options_of, resolve_config
from mdsample.core.state import MaskedState
from mdsample.errors import ConfigError
from mdsample.study.distributed import join, local_device

NAME = "mdsample"


def _config_flags(overrides: dict[str, Any]) -> dict[str, Any]:
    """lm_eval parses ``a.b=1`` into {"a.b": 1}; a key without a dot is not a run-config key of the text domain."""
    unknown = sorted(k for k in overrides if "." not in k and k not in ("seed",))
    if unknown:
        raise ConfigError(f"unknown model_args key {unknown[0]!r}; use model, sampler, device, batch_size, "
                          "gen_length, mc_num, mc_batch_size, greedy_check or an mdsample config key such as "
                          "decode.steps=256 or sampler.kl_threshold=0.01")
    return overrides


class MDSampleLM(LM):
    """An mdsample text model and selection rule behind lm_eval's LM interface (see the module docstring)."""

    def __init__(self, model: str | None = None, sampler: str = "klass", device: str | None = None,
                 batch_size: int | str = 1, max_batch_size: int | None = None, gen_length: int | None = None,
                 mc_num: int = 128, mc_batch_size: int = 32, greedy_check: bool = False, **overrides: Any):
        super().__init__()
        self._shard = join()
        self._rank, self._world_size = self._shard.rank, self._shard.world
        wanted = local_device(self._shard, str(device or "auto"))
        flags = {**_config_flags(overrides), "domain.model": None if model is None else str(model),
                 "device": wanted, "progress": False}
        self.cfg = resolve_config("text", str(sampler), flags=flags)
        self._device = resolve_device(self.cfg.device)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 1
        self.gen_length, self.mc_num, self.mc_batch_size = gen_length, int(mc_num), int(mc_batch_size)
        if self.mc_num < 1 or self.mc_batch_size < 1 or self.mc_num % self.mc_batch_size:
            raise ConfigError(f"mc_num={mc_num} must be a positive multiple of mc_batch_size={mc_batch_size}")
        self.greedy_check = bool(greedy_check)
        self.decoder = Decoder.from_config(self.cfg)
        self.domain = plugin_manager.load_domain("text")
        self.options = self.domain.Options(**options_of(self.cfg.domain))
        torch.manual_seed(self.cfg.seed)
        self.denoiser = self.domain.load_denoiser(self.options, self._device)
        self.text_model = getattr(self.denoiser, "text_model", None)
        self._rendered = False
        self.generator = torch.Generator(device=self._device).manual_seed(self.cfg.seed + self._rank)

    # ------------------------------------------------------------------------------------------------ generation

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            kwargs = dict(request.args[1]) if len(request.args) > 1 else {}
            until = kwargs.get("until") or []
            until = [until] if isinstance(until, str) else list(until)
            length = int(self.gen_length or kwargs.get("max_gen_toks") or 256)
            groups[(tuple(until), length)].append(i)
        out: list[str] = [""] * len(requests)
        for (until, length), members in groups.items():
            for start in range(0, len(members), self.batch_size):
                batch = members[start : start + self.batch_size]
                texts = self._generate([requests[i].args[0] for i in batch], length)
                for i, text in zip(batch, texts, strict=True):
                    out[i] = _cut(text, until)
        return out

    def _generate(self, contexts: list[str], length: int) -> list[str]:
        if self.text_model is None:
            return self._house_generate(contexts)
        from mdsample.plugins.text.adapters import build_canvas

        model = self.text_model
        ids, mask = model.encode_rendered(contexts) if self._rendered else model.encode_prompts(contexts, chat=False)
        canvas = build_canvas(ids.to(self._device), mask.to(self._device), length, model.mask_id)
        state = MaskedState(canvas.tokens, model.mask_id, gen_start=canvas.gen_start)
        result = self.decoder(self.denoiser, state, canvas.conditioning(), self.generator)
        return [model.decode_completion(row[canvas.gen_start :]) for row in result.tokens.cpu()]

    def _house_generate(self, contexts: list[str]) -> list[str]:
        """The shipped house model of ``domain.task``: each context is one of its prompts (e.g. ``123*45=``)."""
        from dataclasses import replace

        answers = []
        for context in contexts:
            options = replace(self.options, prompt=context.strip())
            initial = self.domain.initial_state(self.denoiser, options, 1, self._device)
            result = self.decoder(self.denoiser, initial.state, initial.conditioning, self.generator)
            answers.append(self.domain.decode(result.tokens, initial)[0]["answer"])
        return answers

    # ------------------------------------------------------------------------------------------------ likelihood

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        model = self._hub("loglikelihood")
        out = []
        for request in requests:
            context, continuation = request.args[0], request.args[1]
            prefix, target = self._encode_pair(model, context, continuation)
            out.append((self._mc_loglikelihood(prefix, target), self._is_greedy(prefix, target)))
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise ConfigError("loglikelihood_rolling (perplexity tasks) is not defined for masked diffusion models here; "
                          "use generate_until or loglikelihood tasks")

    def _hub(self, what: str) -> Any:
        if self.text_model is None:
            raise ConfigError(f"{what} needs a hub text model: pass model=ID_OR_PATH in --model_args")
        return self.text_model

    def _encode_pair(self, model: Any, context: str, continuation: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids of context and continuation; trailing spaces of the context move to the continuation."""
        spaces = len(context) - len(context.rstrip())
        context, continuation = context[: len(context) - spaces], context[len(context) - spaces :] + continuation
        if self._rendered:
            whole = model.tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
            head = model.tokenizer(context, add_special_tokens=False)["input_ids"]
        else:
            whole = model.encode_prompts([context + continuation], chat=False)[0][0].tolist()
            head = model.encode_prompts([context], chat=False)[0][0].tolist() if context else list(model.prefix_ids)
        target = whole[len(head) :]
        if not target:
            raise ConfigError(f"the continuation {continuation!r} encodes to no tokens")
        limit = model.max_length or len(whole)
        prefix = head[max(0, len(head) - (limit - len(target))) :]
        return torch.tensor(prefix, dtype=torch.long), torch.tensor(target, dtype=torch.long)

    @torch.no_grad()
    def _mc_loglikelihood(self, prefix: torch.Tensor, target: torch.Tensor) -> float:
        mask_id = self.text_model.mask_id
        length = len(target)
        seq = torch.cat([prefix, target]).to(self._device)
        rows = self.mc_batch_size
        total = 0.0
        for _ in range(self.mc_num // rows):
            first = int(torch.randint(1, length + 1, (), generator=self.generator, device=self._device))
            counts = torch.linspace(first, first + (rows - 1) * length / rows, rows, device=self._device).round().long()
            counts = (counts - 1) % length + 1  # stratified: every row a different masked count in 1..L
            order = torch.rand(rows, length, generator=self.generator, device=self._device).argsort(dim=1)
            masked = torch.cat([torch.zeros(rows, len(prefix), dtype=torch.bool, device=self._device),
                                order < counts.unsqueeze(1)], dim=1)
            noisy = torch.where(masked, mask_id, seq.expand(rows, -1))
            logits = self.denoiser(noisy).float()
            nll = torch.nn.functional.cross_entropy(logits[masked], seq.expand(rows, -1)[masked], reduction="none")
            weight = (length / counts.float()).unsqueeze(1).expand(rows, seq.numel())[masked]
            total += float((nll * weight).sum()) / rows
        return -total / (self.mc_num // rows)

    def _is_greedy(self, prefix: torch.Tensor, target: torch.Tensor) -> bool:
        if not self.greedy_check:
            return False
        from mdsample.core import BlockSchedule, decode

        rule_cls = plugin_manager.get_rule("confidence")
        state = MaskedState.blank(1, len(target), self.text_model.mask_id, prefix.unsqueeze(0), self._device)
        result = decode(self.denoiser, state, rule_cls(rule_cls.Config()), schedule=BlockSchedule(len(target)),
                        confidence="mode")
        return bool((result.tokens[0, len(prefix) :].cpu() == target).all())

    # ------------------------------------------------------------------------------------------------ chat, ranks

    @property
    def tokenizer_name(self) -> str:
        model = self._hub("a chat template")
        return str(getattr(model.tokenizer, "name_or_path", "")).replace("/", "__")

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        model = self._hub("a chat template")
        return model.tokenizer.chat_template if model.has_chat_template else None

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        model = self._hub("a chat template")
        if not model.has_chat_template:
            raise ConfigError(f"--apply_chat_template: model {self.cfg.domain.model!r} has no chat template; drop the "
                              "flag for a base model")
        self._rendered = True
        return model.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                   add_generation_prompt=add_generation_prompt)

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        if self._world_size == 1:
            return tensor
        parts = [torch.zeros_like(tensor) for _ in range(self._world_size)]
        dist.all_gather(parts, tensor)
        return torch.cat(parts)

    def gather_object(self, obj: Any, dst: int = 0) -> list[Any] | None:
        if self._world_size == 1:
            return [obj]
        return self._shard.gather(obj) if dst == 0 else None

    def barrier(self) -> None:
        if self._world_size > 1:
            dist.barrier()


def _cut(text: str, until: tuple[str, ...]) -> str:
    """``text`` up to the first of the stop sequences."""
    cuts = [text.find(s) for s in until if s and s in text]
    return text[: min(cuts)] if cuts else text


if NAME not in model_registry:  # an lm_eval without entry-point discovery imported this module directly
    model_registry.register(NAME, target=MDSampleLM)
