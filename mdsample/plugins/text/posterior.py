"""``mdsample posterior``: reasoning traces sampled given the answer, r ~ p(r | c, a), scored for filtering.

For each (context, answer) pair the answer is written into the answer slots and frozen, the reasoning slots are
in-filled by any rule, and the finished trace is scored by the mean log-likelihood of the answer's tokens with the
answer slots masked again (core/infill.py, ``answer_log_likelihood``): a trace that makes its answer likely is a
trace that explains it. ``trace_score`` checks the steps instead: the mean log-likelihood of each reasoning token
with that token alone masked (``slot_pseudo_log_likelihood``), for tasks whose answer copies the trace's last value
and so cannot tell a sound trace from one that jumps to the given answer. The jsonl lines (prompt, answer, trace,
score, trace_score, nfe) are what
``mdsample train --domain text --init MODEL --data TRACES.jsonl`` fine-tunes on (``domain.min_score`` filters).
The command's arguments and their checks live in posterior_command.py, which imports nothing heavy.

Any template task (arithmetic, chain) works. Pairs come from ``--data PAIRS.jsonl`` (``{"prompt": "123*45=",
"answer": "5535"}`` per line) or from the task's train split; with ``domain.trace_fraction < 1`` only the problems
that a model trained with that fraction saw without reasoning are used.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from mdsample import plugin_manager
from mdsample.api import resolve_device
from mdsample.config import options_of
from mdsample.core import BlockSchedule, TokenChooser, decode
from mdsample.core.infill import answer_log_likelihood, slot_pseudo_log_likelihood
from mdsample.errors import ConfigError, MissingFileError
from mdsample.plugins.text.domain import TextDomain, make_task, traced
from mdsample.plugins.text.options import TEMPLATE_TASKS
from mdsample.plugins.text.tasks.base import Problem
from mdsample.plugins.text.tasks.template import TemplateTask
from mdsample.plugins.text.vocab import CharVocab


def sample_posterior(args: argparse.Namespace, cfg: DictConfig) -> int:
    """What ``mdsample posterior`` runs once posterior_command.py has checked its input: write the traces."""
    domain = plugin_manager.load_domain("text")
    assert isinstance(domain, TextDomain)
    options = domain.Options(**options_of(cfg.domain))
    task = make_task(options)
    if not isinstance(task, TemplateTask):
        raise ConfigError(f"task {task.name!r} has no reasoning slots to sample; use --task one of "
                          f"{', '.join(TEMPLATE_TASKS)}")
    problems = read_pairs(args.data, task, cfg.n) if args.data else untraced_problems(task, options, cfg.n)
    rule_cls = plugin_manager.get_rule(cfg.sampler.name)
    rule = rule_cls(rule_cls.Config(**options_of(cfg.sampler)))
    device = resolve_device(cfg.device)
    denoiser = domain.load_denoiser(options, device)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    vocab = CharVocab()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    start, written = time.perf_counter(), 0
    with open(out, "w") as f:
        for b in range(math.ceil(len(problems) / cfg.batch_size)):
            batch = problems[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            for record in sample_batch(denoiser, task, vocab, batch, rule, cfg, generator, device):
                f.write(json.dumps(record) + "\n")
                written += 1
            f.flush()
    print(f"{written} traces in {time.perf_counter() - start:.1f} s written to {out}")
    return 0


def sample_batch(denoiser, task: TemplateTask, vocab: CharVocab, problems: list[Problem], rule, cfg, generator,
                 device: torch.device) -> list[dict]:
    """Posterior traces for one batch: answers frozen, reasoning in-filled, then the filter score of each trace."""
    answers = [task.answer_ids(p.answer, vocab) for p in problems]
    canvas = task.canvas(problems, vocab, device, answers=[p.answer for p in problems])
    result = decode(denoiser, canvas.state, rule, schedule=BlockSchedule(cfg.decode.steps, cfg.decode.block_length),
                    chooser=TokenChooser(cfg.decode.temperature, cfg.decode.top_k, cfg.decode.top_p),
                    generator=generator, stats_dtype=getattr(torch, cfg.decode.stats_dtype),
                    confidence=cfg.decode.confidence)
    gold = torch.tensor(answers, device=device)
    scores = answer_log_likelihood(denoiser, result.tokens, canvas.answer, gold).tolist()
    slots = task.reasoning_slots()
    reasoning = torch.arange(slots.start, slots.stop, device=device).expand(len(problems), -1)
    trace_scores = slot_pseudo_log_likelihood(denoiser, result.tokens, reasoning).tolist()
    traces = result.tokens[:, slots].cpu()
    return [{"prompt": p.prompt, "answer": p.answer, "trace": vocab.decode(t), "score": s, "trace_score": ts,
             "nfe": int(n)}
            for p, t, s, ts, n in zip(problems, traces, scores, trace_scores, result.nfe.tolist(), strict=True)]


def untraced_problems(task: TemplateTask, options, n: int) -> list[Problem]:
    """Train-split problems, keeping those a model trained with ``options.trace_fraction`` saw without reasoning."""
    vocab, out, batch = CharVocab(), [], 0
    while len(out) < n:
        pool = task.problems((batch + 1) * 4 * n, options.problem_seed + 1, split="train")[batch * 4 * n :]
        prompts = torch.tensor([[vocab.pad_id] * (task.prompt_width - len(p.prompt)) + vocab.encode(p.prompt)
                                for p in pool])
        keep = ~traced(prompts, options.trace_fraction) | (options.trace_fraction >= 1)
        out += [p for p, k in zip(pool, keep.tolist(), strict=True) if k]
        batch += 1
    return out[:n]


def read_pairs(path: str, task: TemplateTask, n: int) -> list[Problem]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise MissingFileError(f"pairs file {path!r} does not exist")
    out = []
    for i, line in enumerate(file.read_text().splitlines()[:n], start=1):
        try:
            rec = json.loads(line)
            problem = task.parse_prompt(rec["prompt"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ConfigError(f"{path}:{i} is not a {{prompt, answer}} record: {err}") from None
        out.append(Problem(problem.prompt, str(rec["answer"])))
    return out
