"""The model router's command line for local runs (the demo, tests, benchmarks), where kwok pods run nothing and the
router pod's process is started on loopback.

A router pod runs the compiled router, ``croupier-modelrouter`` (runtime/gorouter, in the runtime image): locally it
is built from the repository once per source change by ``runtime/gorouter/build.sh`` (cached under
``~/.cache/croupier/gorouter``), or taken from ``CROUPIER_MODELROUTER_BINARY``. ``python`` is the Python router
(``croupier-runtime router``), the same contract, which the router's conformance tests run beside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IMPLEMENTATIONS = ("go", "python")
BINARY_ENV = "CROUPIER_MODELROUTER_BINARY"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "runtime" / "gorouter" / "build.sh"


def gorouter_binary() -> Path:
    """The compiled router: ``$CROUPIER_MODELROUTER_BINARY``, else the one build.sh builds (once) and caches."""
    given = os.environ.get(BINARY_ENV)
    if given:
        return Path(given)
    done = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def router_command(implementation: str = "go") -> list[str]:
    """The model router's command, before its flags: both implementations take the same flags and environment."""
    if implementation == "go":
        return [str(gorouter_binary())]
    if implementation == "python":
        return [sys.executable, "-m", "croupier.runtime.cli", "router"]
    raise ValueError(f"unknown router implementation {implementation!r}: one of {IMPLEMENTATIONS}")
