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

from mdsample.study.cells import Cell, expand
from mdsample.study.report import write_report
from mdsample.study.runner import run_study
from mdsample.study.spec import Quality, Study, load_study

__all__ = ["Cell", "Quality", "Study", "expand", "load_study", "run_study", "write_report"]
