"""The operator process does not load scipy at start.

scipy.stats and scipy.optimize added about 46 MiB to every operator process, scipy.special another 16 (the peak RSS of
the 200-policy benchmark, docs/benchmarks/operator.md): the statistics import scipy.special on first use, when an
Experiment is analysed. A subprocess, so that what other tests imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "sklearn", "pandas", "tensorflow", "pyarrow")


def test_importing_the_operator_loads_no_heavy_module() -> None:
    probe = (
        "import json, sys, croupier.operator.main; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = [m for m in json.loads(done.stdout.strip().splitlines()[-1]) if m.startswith(HEAVY)]
    assert loaded == [], f"the operator imports {loaded[:5]} at start"
