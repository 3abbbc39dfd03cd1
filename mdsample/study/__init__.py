"""Cross-domain comparison studies: a grid of runs, a resumable results file, and a report with Pareto plots.

A study (``mdsample study STUDY.yaml``) declares domains x tasks x samplers x parameter grids x seeds; every
combination is a *cell*, one ordinary generation run through ``mdsample.api.execute``. Each finished cell appends
one JSON line to ``results.jsonl``, keyed by a hash of the cell's fully resolved config, so a study can be killed
at any moment and resumed by running the same command, and a cell whose config changed is recomputed rather than
mixed with stale numbers. ``mdsample report RESULTS`` turns the file into a table, a Markdown report and quality
vs cost (NFE, seconds) Pareto plots per domain and task. Under ``torchrun`` the samples of each cell are sharded
across the processes.

Modules, one concept each: ``spec`` (the study file), ``cells`` (grid expansion, resolved configs, keys),
``store`` (the results file), ``record`` (what one results line holds), ``distributed`` (process groups),
``runner`` (executing the plan with progress bars), ``pareto`` (fronts and plots), ``report`` (tables and
Markdown), ``command`` (the two CLI subcommands).
"""

from __future__ import annotations

from mdsample.lazy import exports

_EXPORTS = {  # imported on first use (PEP 562): `mdsample study` checks its input before the runner imports torch
    "Cell": "mdsample.study.cells",
    "expand": "mdsample.study.cells",
    "write_report": "mdsample.study.report",
    "run_study": "mdsample.study.runner",
    "Quality": "mdsample.study.spec",
    "Study": "mdsample.study.spec",
    "load_study": "mdsample.study.spec",
}

__all__ = sorted(_EXPORTS)


__getattr__ = exports("mdsample.study", _EXPORTS)
