"""The results file (durable appends, torn tails, superseded cells), Pareto fronts and the record's statistics."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mdsample.errors import MissingFileError
from mdsample.study.pareto import front
from mdsample.study.record import nfe_summary
from mdsample.study.store import ResultsFileError, ResultsStore, current, json_safe, results_path


def record(key: str, label: str = "cell", **extra) -> dict:
    return {"key": key, "study": "s", "label": label, **extra}


def test_append_then_read_in_order(tmp_path):
    store = ResultsStore(tmp_path / "deep" / "results.jsonl")
    assert store.records() == []
    store.append(record("a", value=1.5))
    store.append(record("b", value=float("nan")))
    records, torn = store.read()
    assert [r["key"] for r in records] == ["a", "b"] and not torn
    assert records[0]["value"] == 1.5 and records[1]["value"] is None  # strict JSON: NaN is null
    assert store.path.read_bytes().endswith(b"\n")
    assert results_path(tmp_path / "deep") == store.path


def test_torn_last_line_is_ignored_then_cut_before_the_next_append(tmp_path):
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(record("a"))
    with store.path.open("ab") as f:  # what a writer killed mid-line leaves behind
        f.write(b'{"key": "b", "study": "s", "lab')
    records, torn = store.read()
    assert [r["key"] for r in records] == ["a"] and torn
    store.append(record("c"))
    lines = store.path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "c"]


def test_a_damaged_line_in_the_middle_is_reported(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"key": "a"}\nnot json\n{"key": "c"}\n')
    with pytest.raises(ResultsFileError, match="line 2 of"):
        ResultsStore(path).read()
    path.write_text('{"key": "a"}\n[1, 2]\n')
    with pytest.raises(ResultsFileError, match="no 'key'"):
        ResultsStore(path).read()
    with pytest.raises(MissingFileError, match="mdsample study"):
        ResultsStore(tmp_path / "absent.jsonl").read()


def test_current_keeps_the_latest_record_of_each_cell():
    records = [record("a1", "x"), record("b", "y"), record("a2", "x")]
    latest, superseded = current(records)
    assert [r["key"] for r in latest] == ["b", "a2"] and superseded == 1


def test_pareto_front_both_directions_ties_and_nan():
    cost = [1, 2, 3, 4, 2]
    quality = [0.1, 0.5, 0.4, 0.9, 0.5]
    assert front(cost, quality, True).tolist() == [True, True, False, True, True]
    # lower is better: the cheapest point with the lowest value dominates everything else
    assert front(cost, quality, False).tolist() == [True, False, False, False, False]
    assert front([1, 2, 3], [math.nan, 0.2, 0.1], True).tolist() == [False, True, False]


def test_nfe_summary_and_strict_json():
    nfe = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    s = nfe_summary(nfe)
    assert s["mean"] == 5.5 and s["min"] == 1 and s["max"] == 10 and s["p50"] == 5.5
    assert s["p10"] < s["p50"] < s["p90"] < s["p99"] <= s["max"]
    assert json_safe({"a": [float("inf"), 1.0], "b": float("nan")}) == {"a": [None, 1.0], "b": None}
