"""The operator process loads neither scipy, numpy, grpc nor protobuf at start, and still registers every Kind.

scipy.stats and scipy.optimize added about 46 MiB to every operator process, scipy.special another 16, numpy about 18
and grpc with protobuf about 8 (the peak RSS of the 200-policy benchmark, docs/benchmarks/operator.md): the Experiment
statistics import numpy and scipy.special when an Experiment is first analysed, the ModelDeployment observer imports
the TF Serving client (grpc, protobuf) when it first observes a ModelDeployment. A subprocess, so that what other
tests imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("scipy", "sklearn", "pandas", "tensorflow", "pyarrow", "numpy", "grpc", "google.protobuf")
KINDS = {"decisionpolicies", "experiments", "modeldeployments"}

PROBE = """
import json, sys, kopf, croupier.operator.main
registry = kopf.get_default_registry()
handlers = [h for r in (registry._changing, registry._watching) for h in r.get_all_handlers()]
kinds = sorted({h.selector.any_name or h.selector.plural for h in handlers if h.selector is not None})
print(json.dumps({"modules": sorted(sys.modules), "kinds": kinds}))
"""


def _start() -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    found: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_importing_the_operator_loads_no_heavy_module_and_registers_every_kind() -> None:
    found = _start()
    loaded = [m for m in found["modules"] if m in HEAVY or m.startswith(tuple(f"{name}." for name in HEAVY))]
    assert loaded == [], f"the operator imports {loaded[:5]} at start"
    assert set(found["kinds"]) >= KINDS, f"handlers registered for {found['kinds']}, want every Kind {sorted(KINDS)}"
