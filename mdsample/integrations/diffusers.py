"""Every mdsample rule as a diffusers scheduler for ``LLaDA2Pipeline`` and ``DiffusionGemmaPipeline``.

diffusers drives both pipelines with ``BlockRefinementScheduler``: the pipeline owns the model and the block loop and
calls ``scheduler.step(block_logits, step_index, block_tokens, ...)`` once per denoising step. ``RuleScheduler`` is a
BlockRefinementScheduler whose ``step`` asks an mdsample rule which positions to commit, so a pipeline runs KLASS,
MED, EB, ... unchanged::

    from mdsample.integrations.diffusers import RuleScheduler
    scheduler = RuleScheduler(rule="klass", rule_options={"conf_threshold": 0.6})
    pipe = LLaDA2Pipeline(model=model, scheduler=scheduler, tokenizer=tok)

Per step, as mdsample's own loop does it (core/loop.py): candidate tokens from the rule-independent TokenChooser
(temperature / top-k / top-p; the mask token is never a candidate), the shared statistics (StepStats), the count of
the block's linear schedule spread over its full length (as BlockRefinementScheduler spreads it), the rule's
selection (at least one position), and the pipeline's post-mask editing when it asks for it (``editing_threshold``).
State lives in the scheduler between the pipeline's calls and is reset at each block's first step (``timestep``
0): the committed flags of uniform corruption (``mask_token_id=None``, DiffusionGemma) and the KL history of rules
that keep one (KLASS reads KL values from earlier steps of the block). The pipeline's ``threshold`` and
``minimal_topk`` are BlockRefinementScheduler's own knobs and are not read: the rule and its options decide.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import BlockRefinementScheduler
from diffusers.configuration_utils import register_to_config
from diffusers.schedulers.scheduling_block_refinement import BlockRefinementSchedulerOutput

from mdsample.core.kl_history import KLHistory
from mdsample.core.rules import BUILTIN_RULES, Rule, StepContext, ensure_progress
from mdsample.core.schedule import tokens_this_step
from mdsample.core.state import noise
from mdsample.core.stats import StepStats
from mdsample.core.tokens import TokenChooser
from mdsample.errors import UnknownChoiceError


def _rule(name: str, options: dict[str, Any] | None) -> Rule:
    """A built-in rule, or one a plugin registers (``register_samplers``), with its options."""
    if name in BUILTIN_RULES:
        return BUILTIN_RULES[name](**(options or {}))
    from mdsample import plugin_manager

    try:
        cls = plugin_manager.get_rule(name)
    except Exception:
        raise UnknownChoiceError("sampler", name, sorted(BUILTIN_RULES)) from None
    return cls(cls.Config(**(options or {})))


class RuleScheduler(BlockRefinementScheduler):
    """BlockRefinementScheduler with an mdsample rule choosing the committed positions (module docstring).

    Arguments are keyword-only: diffusers' config registration records positional arguments as defaults, so a
    positional rule would be lost on ``save_config`` / ``from_config``.
    """

    @register_to_config
    def __init__(
        self,
        *,
        rule: str = "klass",
        rule_options: dict[str, Any] | None = None,
        block_length: int = 32,
        num_inference_steps: int = 32,
        threshold: float = 0.95,
        editing_threshold: float | None = None,
        minimal_topk: int = 1,
    ):
        self.rule = _rule(rule, rule_options)
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.arange(num_inference_steps - 1, -1, -1, dtype=torch.long)
        self._transfer_schedule = None
        self._committed: torch.Tensor | None = None
        self._history: KLHistory | None = None

    def _reset(self, sample: torch.Tensor, vocab: int) -> None:
        self._committed = torch.zeros_like(sample, dtype=torch.bool)
        self._history = None
        if self.rule.history:
            self._history = KLHistory(sample.shape[0], sample.shape[1], vocab, self.rule.history, sample.device,
                                     torch.float32)

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.LongTensor,
        *,
        mask_token_id: int | None = None,
        temperature: float = 0.0,
        top_p: float | None = None,
        top_k: int | None = None,
        sampling_method: str = "auto",
        threshold: float | None = None,
        editing_threshold: float | None = None,
        minimal_topk: int | None = None,
        prompt_mask: torch.BoolTensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> BlockRefinementSchedulerOutput | tuple:
        """One step of the pipeline's block loop: ``model_output[B, C, V]`` for the block ``sample[B, C]``."""
        step = int(timestep)
        batch, length = sample.shape
        vocab = model_output.shape[-1]
        if step == 0 or self._committed is None or self._committed.shape != sample.shape:
            self._reset(sample, vocab)
        absorbing = mask_token_id is not None
        active = sample == mask_token_id if absorbing else ~self._committed
        logits = model_output.float()
        if absorbing and 0 <= mask_token_id < vocab:
            logits = logits.clone()
            logits[..., mask_token_id] = float("-inf")
        greedy = sampling_method == "greedy" or temperature == 0
        chooser = TokenChooser(0.0 if greedy else temperature, top_k or 0, 1.0 if top_p is None else top_p)
        x0 = chooser(logits, generator)
        stats = StepStats(logits, x0)
        kl_history = None
        if self._history is not None:
            kl_history = self._history.update(torch.arange(batch, device=sample.device), stats.probs)
        steps = self.num_inference_steps
        index = torch.full((batch,), min(step, steps - 1), dtype=torch.long, device=sample.device)
        remaining = active.sum(dim=1)
        k = tokens_this_step(self.rule.schedule, torch.full_like(remaining, length), remaining, index, steps)
        ctx = StepContext(active, k, index, steps, length, kl_history, generator)
        chosen = ensure_progress(self.rule.select(stats, ctx) & active, stats.conf, active)

        threshold_edit = self.config.editing_threshold if editing_threshold is None else editing_threshold
        edited = torch.zeros_like(chosen)
        if threshold_edit is not None and threshold_edit > 0:
            editable = ~active if prompt_mask is None else ~active & ~prompt_mask.view(1, -1)
            edited = editable & (x0 != sample) & (stats.conf > threshold_edit)
        prev = torch.where(chosen | edited, x0, sample)
        if not absorbing:
            had = active.any()
            self._committed = self._committed | chosen
            if had:  # noise is drawn while the canvas had uncommitted positions, as mdsample's loop draws it
                prev = torch.where(self._committed, prev, noise((batch, length), vocab, sample.device, generator))
        out = (prev, chosen, edited, x0, stats.conf, model_output)
        return BlockRefinementSchedulerOutput(*out) if return_dict else out
