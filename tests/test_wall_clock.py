"""``wall_s_total`` of a run sharded over processes is wall-clock: the processes decode at the same time, so it is
the longest process's decode time, not the sum over processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mdsample.api import Shard, execute
from mdsample.config import resolve_config


@dataclass(frozen=True)
class Recording(Shard):
    """Rank 1: keeps what it would send to rank 0."""

    sent: list = field(default_factory=list)

    def gather(self, payload: Any) -> None:
        self.sent.append(payload)
        return None


@dataclass(frozen=True)
class Lead(Shard):
    """Rank 0: receives its own payload and rank 1's."""

    other: Any = None
    own: list = field(default_factory=list)

    def gather(self, payload: Any) -> list[Any]:
        self.own.append(payload)
        return [payload, self.other]


def test_sharded_wall_clock_is_the_longest_process(toy_plugins, tmp_path):
    cfg = resolve_config("toy", "confidence", flags={"n": 7, "batch_size": 2, "progress": False,
                                                      "out": str(tmp_path / "run")})
    rank1 = Recording(rank=1, world=2)
    assert execute(cfg, shard=rank1) is None
    ((done1, wall1),) = rank1.sent
    lead = Lead(rank=0, world=2, other=(done1, wall1))
    result = execute(cfg, shard=lead)
    ((_, wall0),) = lead.own
    assert result is not None and result.metrics["n"] == 7 and wall0 > 0 and wall1 > 0
    assert result.metrics["wall_s_total"] == max(wall0, wall1) < wall0 + wall1
    assert result.metrics["wall_s_per_sample"] == max(wall0, wall1) / 7
