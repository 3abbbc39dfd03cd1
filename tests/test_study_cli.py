"""`mdsample study` and `mdsample report` in-process: resume, recompute on change, Ctrl-C, reports, errors."""

from __future__ import annotations

import json

import pytest
import toy_domain
import yaml

from mdsample.api import resolve_device

STUDY = {
    "name": "toy",
    "n": 3,
    "seeds": [0, 1],
    "overrides": {"decode.temperature": 1.0},
    "domains": {"toy": {"quality": {"metric": "valid", "better": "higher"}}},
    "samplers": {"confidence": {"grid": {"decode.steps": [2, 8]}},
                 "klass": {"grid": {"sampler.kl_threshold": [0.05]}}},
}
CELLS = (2 + 1) * 2


def write(path, study: dict):
    path.write_text(yaml.safe_dump(study))
    return path


def lines(results) -> list[dict]:
    return [json.loads(line) for line in results.read_text().splitlines()]


def test_study_records_every_cell_then_resumes_with_nothing_to_do(cli, tmp_path):
    study = write(tmp_path / "toy.yaml", STUDY)
    res = cli("study", study, "--out", tmp_path / "out", "--no-progress")
    assert res.code == 0, res.err
    results = tmp_path / "out" / "results.jsonl"
    records = lines(results)
    assert len(records) == CELLS and len({r["key"] for r in records}) == CELLS
    first = records[0]
    assert first["cell"] == {"domain": "toy", "task": "unconditional", "sampler": "confidence",
                             "params": {"decode.steps": 2}, "seed": 0}
    assert first["config"]["decode"]["steps"] == 2 and first["config"]["seed"] == 0
    assert first["quality"] == {"metric": "valid", "better": "higher"}
    assert set(first["nfe"]) >= {"mean", "p50", "p90", "p99"} and first["wall_s"] > 0
    assert first["device"]["type"] == resolve_device("auto").type and first["world_size"] == 1
    assert first["command"] == f"mdsample study {study} --out {tmp_path / 'out'} --no-progress"
    assert set(first["versions"]) == {"mdsample", "torch", "transformers", "python"}
    assert (tmp_path / "out" / "cells" / first["key"] / "samples.txt").is_file()
    assert "toy / unconditional" in res.out and "6 ran" in res.out  # the summary table and line

    again = cli("study", study, "--out", tmp_path / "out", "--no-progress")
    assert again.code == 0 and "6 already recorded, 0 to run" in again.out
    assert lines(results) == records


def test_changed_cell_is_recomputed_and_supersedes_the_old_line(cli, tmp_path):
    study = write(tmp_path / "toy.yaml", STUDY)
    assert cli("study", study, "--out", tmp_path / "out", "--no-progress").code == 0
    changed = {**STUDY, "samplers": {**STUDY["samplers"], "confidence": {
        "grid": {"decode.steps": [2, 8]}, "overrides": {"decode.temperature": 0.5}}}}
    write(tmp_path / "toy.yaml", changed)
    dry = cli("study", study, "--out", tmp_path / "out", "--dry-run", "--no-progress")
    assert dry.code == 0 and dry.out.count("changed") == 4
    res = cli("study", study, "--out", tmp_path / "out", "--no-progress")
    assert res.code == 0 and "2 already recorded, 4 to run (4 changed since recorded)" in res.out
    records = lines(tmp_path / "out" / "results.jsonl")
    assert len(records) == CELLS + 4
    newest = {r["label"]: r for r in records}
    assert {r["config"]["decode"]["temperature"] for r in newest.values() if r["cell"]["sampler"] == "confidence"} \
        == {0.5}

    report = cli("report", tmp_path / "out")
    assert report.code == 0 and "4 superseded lines" in report.out
    text = (tmp_path / "out" / "report.md").read_text()
    assert "4 superseded lines" in text and text.count("| confidence |") == 2  # two settings, seeds averaged


def test_ctrl_c_keeps_finished_cells_and_the_rerun_completes(cli, tmp_path, monkeypatch):
    study = write(tmp_path / "toy.yaml", STUDY)
    real = toy_domain.SuccessorDenoiser.__call__
    calls = {"n": 0}

    def interrupt_later(self, tokens, **kw):
        calls["n"] += 1
        if calls["n"] == 9:  # in the third cell: the first two take 2 calls each, the third up to 8
            raise KeyboardInterrupt
        return real(self, tokens, **kw)

    monkeypatch.setattr(toy_domain.SuccessorDenoiser, "__call__", interrupt_later)
    res = cli("study", study, "--out", tmp_path / "out", "--no-progress")
    assert res.code == 130 and "2 of 6 cells finished" in res.out
    assert len(lines(tmp_path / "out" / "results.jsonl")) == 2
    monkeypatch.setattr(toy_domain.SuccessorDenoiser, "__call__", real)
    res = cli("study", study, "--out", tmp_path / "out", "--no-progress")
    assert res.code == 0 and "2 already recorded, 4 to run" in res.out
    assert len({r["key"] for r in lines(tmp_path / "out" / "results.jsonl")}) == CELLS


def test_report_writes_markdown_and_plots(cli, tmp_path):
    study = write(tmp_path / "toy.yaml", STUDY)
    assert cli("study", study, "--out", tmp_path / "out", "--no-progress").code == 0
    res = cli("report", tmp_path / "out" / "results.jsonl", "--out", tmp_path / "docs")
    assert res.code == 0, res.err
    assert "valid (higher is better)" in res.out and "Pareto" in res.out
    text = (tmp_path / "docs" / "report.md").read_text()
    assert "## toy / unconditional" in text and "![toy / unconditional" in text
    assert "| sampler | setting | seeds | valid | NFE |" in text and "unique" in text
    png = tmp_path / "docs" / "toy-unconditional.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    relabelled = cli("report", tmp_path / "out", "--out", tmp_path / "docs2", "--quality", "toy=unique:lower")
    assert relabelled.code == 0 and "unique (lower is better)" in relabelled.out


REPORT_ERRORS = {
    "missing results": (["report", "absent.jsonl"], ["absent.jsonl", "does not exist"]),
    "bad quality flag": (["report", "out", "--quality", "toy"], ["DOMAIN=METRIC"]),
    "unknown quality metric": (["report", "out", "--quality", "toy=nope"], ["'nope'", "unique"]),
    "missing study": (["study", "absent.yaml"], ["absent.yaml", "molecule"]),
    "owned override": (["study", "toy.yaml", "seed=3"], ["'seed'"]),
}


@pytest.mark.parametrize("case", REPORT_ERRORS)
def test_errors_exit_2_with_one_line(cli, tmp_path, case):
    write(tmp_path / "toy.yaml", STUDY)
    assert cli("study", tmp_path / "toy.yaml", "--out", tmp_path / "out", "--no-progress").code == 0
    args, words = REPORT_ERRORS[case]
    res = cli(*args)
    assert res.code == 2 and res.err.startswith("error: ") and res.err.count("\n") == 1, res.err
    for word in words:
        assert word in res.err


def test_a_quality_metric_the_domain_lacks_stops_after_recording_the_cell(cli, tmp_path):
    bad = {**STUDY, "domains": {"toy": {"quality": {"metric": "validity"}}}}
    res = cli("study", write(tmp_path / "toy.yaml", bad), "--out", tmp_path / "out", "--no-progress")
    assert res.code == 2 and "'validity'" in res.err and "valid" in res.err
    assert len(lines(tmp_path / "out" / "results.jsonl")) == 1


def test_shipped_studies_resolve(toy_plugins, monkeypatch):
    from mdsample import plugin_manager
    from mdsample.study.cells import expand
    from mdsample.study.command import shipped_studies, study_file
    from mdsample.study.spec import load_study

    monkeypatch.setenv("MDSAMPLE_PLUGINS", "samplers,molecule,text,image")  # the first-party domains
    plugin_manager.reset()
    available = set(plugin_manager.domains())
    for name in shipped_studies():
        study = load_study(study_file(name))
        if set(study.domains) <= available:
            cells = expand(study)
            assert cells and all(c.config.n >= 1 for c in cells)
    assert "molecule" in shipped_studies()
