"""Markdown tables for BENCHMARKS.md from text_throughput.py's sweep JSON (one file per process; several merge).

Why a renderer: the sweep writes hundreds of rows (every rule x cache x capture at batches 1 and 8, the batch x prompt
sweep, reference loops, profiles); the tables and the target check must come from those rows, not be copied by hand.
The target check is recomputed from the rows (throughput_model.targets), so merged files are checked together.

python benchmarks/throughput_tables.py benchmarks/results/text_throughput_sweep_*_h200.json \
    [--merged benchmarks/results/text_throughput_sweep_h200.json] > tables.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from throughput_model import targets

MODES = [("none", "auto"), ("prefix", "auto"), ("dual", "auto"), ("none", "off"), ("prefix", "off"), ("dual", "off")]
MODE_NAMES = {"auto": "captured", "on": "captured", "off": "eager"}


def merge(reports: list[dict]) -> dict:
    """One report of several processes' files: rows and skipped entries concatenated, presets side by side, and the
    device measurements kept per file (``runs``), since each process measured its own GPU."""
    keep = ("device_name", "torch", "dtype", "prompts", "copy_bandwidth_gbs", "gemm_tflops", "budget_s", "elapsed_s",
            "decode", "reference_error")
    rows = [r for rep in reports for r in rep["rows"]]
    presets: dict[str, dict] = {}
    for rep in reports:  # one preset may be split over processes (prompts): keep what any of them filled in
        for name, info in rep["presets"].items():
            mine = presets.setdefault(name, {})
            mine.update({k: v for k, v in info.items() if v or k not in mine})
    return dict(benchmark="text_throughput_sweep", device_name=reports[0]["device_name"],
                runs=[{k: rep.get(k) for k in keep} | {"presets": sorted(rep["presets"])} for rep in reports],
                presets=presets,
                targets=targets(rows), skipped=[s for rep in reports for s in rep["skipped"]], rows=rows)


def fmt(value, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def table(header: list[str], lines: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(x) + " |" for x in lines]


def mode_name(cache: str, capture: str) -> str:
    return f"{cache} {MODE_NAMES.get(capture, capture)}"


def detail_tables(rows: list[dict], preset: str, prompt: int) -> list[str]:
    """Per detail batch: ms per step / tokens/s of every rule in every mode, then the peaks."""
    out = []
    ours = [r for r in rows if r["kind"] == "mdsample" and r["preset"] == preset and r["prompt"] == prompt]
    for batch in sorted({r["batch"] for r in ours}):
        here = [r for r in ours if r["batch"] == batch]
        modes = [m for m in MODES if any((r["cache"], r["capture"]) == m for r in here)]
        if len(modes) < 2:
            continue  # a sweep cell, in the sweep table
        rules = sorted({r["rule"] for r in here}, key=lambda r: (r not in ("confidence", "klass"), r))
        lines = []
        for rule in rules:
            line = [rule]
            for cache, capture in modes:
                r = next((x for x in here if (x["rule"], x["cache"], x["capture"]) == (rule, cache, capture)), None)
                line.append("" if r is None else f"{fmt(r['step_ms'])} / {fmt(r['tokens_per_s'], 0)}")
            lines.append(line)
        out += [f"Batch {batch}, prompt {prompt}: ms per step / tokens/s", ""]
        out += table(["rule"] + [mode_name(*m) for m in modes], lines) + [""]
        peaks = [[rule] + [fmt(next((x["peak_gb"] for x in here if (x["rule"], x["cache"], x["capture"])
                                     == (rule, *m)), None), 2) for m in modes] for rule in ("confidence", "klass")
                 if rule in rules]
        if any(v for line in peaks for v in line[1:]):
            out += [f"Batch {batch}, prompt {prompt}: peak allocated GiB", ""]
            out += table(["rule"] + [mode_name(*m) for m in modes], peaks) + [""]
    return out


def sweep_table(rows: list[dict], preset: str) -> list[str]:
    """Every captured run of the rules the batch sweep covers (those measured outside the detail cells, and the
    plain loop and KLASS), across batch and prompt, against its roofline."""
    ours = [r for r in rows if r["kind"] == "mdsample" and r["preset"] == preset]
    modes: dict[tuple, set] = {}
    for r in ours:
        modes.setdefault((r["batch"], r["prompt"]), set()).add((r["cache"], r["capture"]))
    detail = {cell for cell, seen in modes.items() if len(seen) > 1}
    rules = {"confidence", "klass"} | {r["rule"] for r in ours if (r["batch"], r["prompt"]) not in detail}
    lines = []
    chosen = [r for r in ours if r["rule"] in rules and r["capture"] != "off"]
    for r in sorted(chosen, key=lambda r: (r["prompt"], r["batch"], r["rule"], r["cache"])):
        lines.append([str(r["prompt"]), str(r["batch"]), r["rule"], r["cache"], fmt(r["step_ms"]),
                      fmt(r["tokens_per_s"], 0), fmt(r.get("peak_gb"), 1), fmt(r["roofline_ms"], 2),
                      f"{fmt(r['weight_read_ms'], 2)} / {fmt(r['compute_ms'], 2)} / {fmt(r['kv_read_ms'], 2)}",
                      f"**{fmt(r['step_over_roofline'], 2)}**"])
    header = ["prompt", "batch", "rule", "cache", "ms / step", "tokens/s", "peak GiB", "roofline ms",
              "weights / compute / KV read ms", "step / roofline"]
    return table(header, lines) + [""] if lines else []


def reference_table(rows: list[dict], preset: str, agree: dict) -> list[str]:
    refs = [r for r in rows if r["kind"] == "reference" and r["preset"] == preset]
    lines = [[r["rule"], r["model"], fmt(r["step_ms"]), fmt(r["tokens_per_s"]), fmt(r.get("peak_gb"), 2),
              fmt(agree.get(f"b{r['batch']}:{r['rule']}:{r['model']}"), 2)] for r in refs]
    return table(["loop", "model", "ms / step", "tokens/s", "peak GiB", "same tokens as ours"], lines) + [""] if lines \
        else []


def profile_table(rows: list[dict], preset: str) -> list[str]:
    """Where a captured step's time goes: GPU kernel time by kind, and the GPU's idle time, against the roofline."""
    profiles = [r for r in rows if r["kind"] == "profile" and r["preset"] == preset]
    kinds = ("gemm", "attention", "elementwise/other", "copy")
    lines = [[f"{r['rule']} b{r['batch']} p{r['prompt']} {r['cache']}", fmt(r["wall_ms_per_step"], 2),
              fmt(r["gpu_ms_per_step"], 2),
              *[fmt(r["by_kind"].get(k, {}).get("ms_per_step"), 2) for k in kinds], fmt(r["idle_ms_per_step"], 2),
              fmt(r["kernels_per_step"], 0), fmt(r["roofline_ms"], 2), fmt(r.get("gemm_over_roofline"), 2)]
             for r in profiles]
    header = ["run", "wall ms", "GPU ms", "GEMM", "attention", "elementwise", "copies", "idle", "kernels",
              "roofline ms", "GEMM / roofline"]
    return table(header, lines) + [""] if lines else []


def target_section(checks: list[dict]) -> list[str]:
    """Per target and preset: how many cells meet it, and each cell's value (the worst mode for the per-rule ones)."""
    out = []
    for name in dict.fromkeys(c["target"] for c in checks):
        mine = [c for c in checks if c["target"] == name]
        limit = mine[0]["limit"]
        worst: dict[tuple, dict] = {}
        for c in mine:  # one line per preset and cell: the worst of its modes
            key, sign = (c["preset"], c["cell"]), -1 if c["higher_is_better"] else 1
            held = worst.get(key)
            if held is None or held["value"] is None or (c["value"] is not None
                                                         and sign * c["value"] > sign * held["value"]):
                worst[key] = c
        met = sum(1 for c in mine if c["met"])
        out += [f"**{name}** (limit {limit}): {met} of {len(mine)} checks met", ""]
        lines = [[c["preset"], c["cell"], fmt(c["value"], 3), c["detail"],
                  {True: "met", False: "**not met**", None: "missing"}[c["met"]]] for c in worst.values()]
        out += table(["preset", "cell", "value (worst mode)", "mode", ""], lines) + [""]
    return out


def render(report: dict) -> str:
    rows = [r for r in report["rows"] if r["kind"] != "failed"]
    out = [f"Device: {report['device_name']}", ""]
    for run in report.get("runs", [report]):
        out.append(f"- {', '.join(run.get('presets') or report['presets'])}, prompts {run.get('prompts')}: copy "
                   f"bandwidth {fmt(run['copy_bandwidth_gbs'], 0)} GB/s, bf16 GEMM peak "
                   f"{fmt(run['gemm_tflops'], 0)} TFLOP/s, "
                   f"torch {run['torch']}, decode options {run['decode'] or 'defaults'}"
                   + (f"; reference loops not run: {run['reference_error']}" if run.get("reference_error") else ""))
    out.append("")
    for preset, info in report["presets"].items():
        prompts = sorted({r["prompt"] for r in rows if r["preset"] == preset})
        out += [f"### {preset}: weights {fmt(info['weight_gb'], 1)} GiB, weight-read floor {fmt(info['floor_ms'], 2)} "
                f"ms", ""]
        if prompts:
            out += detail_tables(rows, preset, prompts[0])
        out += sweep_table(rows, preset) + reference_table(rows, preset, info.get("same_tokens_as_reference", {}))
        out += profile_table(rows, preset)
    out += ["### Targets", ""] + target_section(targets(rows))
    failed = [r for r in report["rows"] if r["kind"] == "failed"]
    left = [f"- failed: {r['preset']} {r['of']} b{r['batch']} p{r['prompt']} {r['rule']} {r['cache']} "
            f"{r['capture']}: {r['failed']}" for r in failed]
    left += [f"- skipped by the budget: {s}" for s in report["skipped"]]
    return "\n".join(out + (["### Not measured", ""] + left if left else [])) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--merged", type=Path, help="also write the merged JSON here")
    args = parser.parse_args()
    report = merge([json.loads(f.read_text()) for f in args.files])
    if args.merged:
        args.merged.write_text(json.dumps(report, indent=1) + "\n")
    print(render(report), end="")


if __name__ == "__main__":
    main()
