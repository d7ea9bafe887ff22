"""The operator fixtures of tests/integration/operator, for the health-check tests here (imported, not copied)."""

from integration.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Policies,
    _operator_survives,
    crds,
    local_runtime,
    operator,
    operator_kubeconfig,
    policies,
)
