"""A test's subprocess imports what the test process imports (conftest puts ``sys.path`` on ``PYTHONPATH``).

On a GPU host whose packages came through ``PYTHONPATH=/tmp/site``, tests that set their own ``PYTHONPATH`` for
a subprocess dropped that folder and the subprocess could not import omegaconf. A subprocess must not depend on
how pytest found its packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mdsample


def test_a_subprocess_sees_this_process_import_path(tmp_path):
    code = "import json, sys, mdsample, omegaconf; print(json.dumps([mdsample.__file__, sys.path]))"
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    where, path = json.loads(done.stdout)
    assert where == mdsample.__file__
    missing = [p for p in sys.path if p and os.path.exists(p) and p not in path]
    assert not missing, f"the subprocess cannot import from {missing}"
