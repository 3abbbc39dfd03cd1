"""``mdsample --help``, ``mdsample list`` and argument / config errors import no heavy library.

Each of torch, transformers, diffusers and rdkit costs seconds to import; the plugins describe themselves
(mdsample.describe) so that these commands answer at once (the issue's budget: 1.5 s on the 2-core machine). The
check runs the command in a fresh interpreter with every installed plugin, and reads ``sys.modules`` at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "diffusers", "rdkit", "selfies", "fcd", "matplotlib", "scipy", "sklearn")
PROBE = """
import json, sys
from mdsample.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))}), file=sys.stderr)
"""

COMMANDS = {
    "help": ["--help"],
    "list": ["list"],
    "unknown option": ["--domain", "text", "--bogus"],
    "unknown key": ["--domain", "image", "sampler.kl_treshold=1"],
    "bad value": ["--domain", "molecule", "decode.steps=abc"],
    "bad rule option": ["--sampler", "klass", "sampler.unmask_strategy=nope"],
    "unknown task": ["--domain", "text", "--task", "nope"],
    "bad device": ["--device", "quantum"],
    "bad out": ["--out", "/dev/null"],
    "train config error": ["train", "--domain", "text", "train.dtype=fp8"],
    "train help": ["train", "--help"],
    "study error": ["study", "nope"],
    "report error": ["report", "nope"],
    "posterior error": ["posterior", "--task", "sudoku", "--out", "x.jsonl"],
}


@pytest.mark.parametrize("case", COMMANDS)
def test_command_imports_no_heavy_library(case, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MDSAMPLE_PLUGINS"}  # every installed plugin
    code = PROBE.replace("set(HEAVY)", repr(set(HEAVY)))
    done = subprocess.run([sys.executable, "-c", code, *COMMANDS[case]], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] == (0 if "help" in case or case == "list" else 2), done.stderr
    assert report["heavy"] == [], f"`mdsample {' '.join(COMMANDS[case])}` imported {report['heavy']}"
