"""The operator fixtures of tests/integration/operator (imported, not copied), and Helm."""

from pathlib import Path

import pytest
from integration.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Policies,
    _operator_survives,
    crds,
    local_runtime,
    operator,
    operator_kubeconfig,
    policies,
)
from integration.ops.tools import bin_dir


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm v3.22.0, built once from the Go module proxy (hack/helm/build.sh) and cached."""
    return bin_dir("hack/helm/build.sh") / "helm"
