"""The pipeline hooks studies rely on: per-batch random streams, sharded execution, and joining batches."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mdsample.api import Shard, _concat, batch_seed, execute
from mdsample.config import resolve_config
from mdsample.core.state import MaskedState
from mdsample.domain import Initial


@dataclass(frozen=True)
class Relay(Shard):
    """Two ranks run one after the other in this process: rank 1 leaves its payload, rank 0 collects it."""

    mailbox: list = field(default_factory=list)

    def gather(self, payload):
        if self.rank == 0:
            return [payload, *self.mailbox]
        self.mailbox.append(payload)
        return None


def test_batch_seeds_keep_the_first_batch_and_spread_the_rest():
    assert batch_seed(7, 0) == 7
    seeds = {batch_seed(s, b) for s in range(50) for b in range(50)}
    assert len(seeds) == 2500 and all(0 <= x < 2**64 for x in seeds)
    assert len({x % 2**32 for x in seeds}) == 2500  # distinct for the CPU generator too (it keeps 32 bits)


def test_sharded_batches_reproduce_the_one_process_run(toy_plugins, tmp_path):
    def config(out: str):
        return resolve_config("toy", "random", flags={"n": 7, "batch_size": 2, "seed": 3, "progress": False,
                                                      "decode.temperature": 1.0, "out": str(tmp_path / out)})

    whole = execute(config("whole"))
    mailbox: list = []
    assert execute(config("sharded"), shard=Relay(1, 2, mailbox)) is None
    assert not (tmp_path / "sharded").exists()  # only rank 0 writes the run directory
    sharded = execute(config("sharded"), shard=Relay(0, 2, mailbox))
    assert torch.equal(sharded.tokens, whole.tokens) and torch.equal(sharded.nfe, whole.nfe)
    assert sharded.objects == whole.objects and len(set(whole.objects)) > 1
    timing = ("wall_s_total", "wall_s_per_sample")
    assert {k: v for k, v in sharded.metrics.items() if k not in timing} == \
        {k: v for k, v in whole.metrics.items() if k not in timing}
    assert (tmp_path / "sharded" / "samples.txt").read_text() == (tmp_path / "whole" / "samples.txt").read_text()


def test_batches_draw_independent_streams(toy_plugins, tmp_path):
    """Batch b of a run is the same whatever came before it: a run of 2 batches starts with the 1-batch run."""
    def tokens(n: int) -> torch.Tensor:
        cfg = resolve_config("toy", "random", flags={"n": n, "batch_size": 3, "seed": 5, "progress": False,
                                                     "decode.temperature": 1.0, "out": str(tmp_path / str(n))})
        return execute(cfg).tokens

    assert torch.equal(tokens(6)[:3], tokens(3))


@dataclass
class TaskInitial(Initial):
    vocab: str = ""
    problems: list = field(default_factory=list)


def test_joined_batches_keep_the_domains_initial_class_and_per_row_fields():
    def batch(rows: int, first: int) -> TaskInitial:
        state = MaskedState.blank(rows, 4, mask_id=9)
        ids = list(range(first, first + rows))
        return TaskInitial(state, {"label": torch.tensor(ids), "scale": torch.tensor(2.0)},
                           [{"i": i} for i in ids], torch.zeros(rows, 2, dtype=torch.long), vocab="abc", problems=ids)

    joined = _concat([batch(2, 0), batch(1, 2)])
    assert isinstance(joined, TaskInitial) and joined.vocab == "abc"
    assert joined.problems == [0, 1, 2] and [r["i"] for r in joined.requests] == [0, 1, 2]
    assert joined.conditioning["label"].tolist() == [0, 1, 2] and joined.conditioning["scale"].item() == 2.0
    assert joined.state.batch == 3 and joined.answer.shape == (3, 2)
