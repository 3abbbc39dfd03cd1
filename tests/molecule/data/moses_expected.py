"""Produce ``moses_expected.json``: MOSES's own metrics (molsets 0.3.1 ``get_all_metrics``) on the fixture files.

Run it in a scratch environment, never in mdsample's (molsets pins old numpy/pandas and is not a dependency):

    python -m venv /tmp/moses && /tmp/moses/bin/pip install torch 'numpy<2' 'pandas<2' rdkit fcd-torch scipy matplotlib
    /tmp/moses/bin/pip install --no-deps molsets==0.3.1
    echo 'iteritems = lambda d: iter(d.items())' > $(/tmp/moses/bin/python -c \
        'import rdkit, os; print(os.path.dirname(rdkit.__file__))')/six.py   # rdkit.six, gone from recent RDKit
    /tmp/moses/bin/python tests/molecule/data/moses_expected.py

The fixtures are raw sampler output of the shipped models (valid and invalid strings, as ``samples.smi`` holds them)
plus a few edge cases (empty string, charged, 8-ring, PAINS-like, duplicates, salts); one string per line.
"""

import json
import sys
from importlib.metadata import version
from pathlib import Path

import moses

HERE = Path(__file__).parent
FIXTURES = ("moses_smiles_samples.smi", "moses_selfies_samples.smi")

out = {"produced_by": "molsets get_all_metrics(gen, n_jobs=1, device='cpu'), default test/scaffold/train sets",
       "versions": {p: version(p) for p in ("molsets", "rdkit", "fcd_torch", "numpy", "pandas", "torch")},
       "python": sys.version.split()[0]}
for name in FIXTURES:
    gen = (HERE / name).read_text().split("\n")[:-1]
    metrics = moses.get_all_metrics(gen, n_jobs=1, device="cpu")
    out[name] = {k: float(v) for k, v in metrics.items()}
    print(name, out[name], flush=True)
(HERE / "moses_expected.json").write_text(json.dumps(out, indent=2) + "\n")
