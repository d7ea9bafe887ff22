"""Prometheus metrics of the operator, created once per process (module import) in a registry of our own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

API_WRITES = Counter(
    "croupier_operator_api_writes_total",
    "Kubernetes API writes made by the operator's own code (Kopf's annotation/finalizer patches not included).",
    ["verb", "kind"],
    registry=REGISTRY,
)
RECONCILES = Counter(
    "croupier_operator_reconciles_total",
    "Reconciles of children by trigger and outcome.",
    ["kind", "trigger", "outcome"],
    registry=REGISTRY,
)
CHILDREN_APPLIED = Counter(
    "croupier_operator_children_applied_total",
    "Children server-side applied because they were missing or differed from the desired manifest.",
    ["kind"],
    registry=REGISTRY,
)
STATUS_WRITES = Counter(
    "croupier_operator_status_writes_total",
    "Status patches of custom resources (written only when the status changed).",
    ["kind"],
    registry=REGISTRY,
)
PROBES = Counter(
    "croupier_operator_runtime_probes_total",
    "Reads of a runtime's GET /v1/stats by outcome (ok, unreachable, invalid).",
    ["outcome"],
    registry=REGISTRY,
)
PROBE_SECONDS = Histogram(
    "croupier_operator_runtime_probe_seconds",
    "Latency of GET /v1/stats.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
    registry=REGISTRY,
)
POLICIES = Gauge(
    "croupier_operator_policies",
    "DecisionPolicies by Ready condition status, as last computed.",
    ["ready"],
    registry=REGISTRY,
)

_OBJECT = ["object_namespace", "object_name"]
OBJECT_CONDITIONS = Gauge(
    "croupier_operator_condition",
    "Conditions of every Croupier object as last computed (value 1), with their status and reason.",
    [*_OBJECT, "kind", "type", "status", "reason"],
    registry=REGISTRY,
)
CANARY_WEIGHT = Gauge(
    "croupier_operator_canary_weight",
    "Percent of a ModelDeployment's traffic on its canary version now (the live weight in status).",
    _OBJECT,
    registry=REGISTRY,
)
CANARY_STATE = Gauge(
    "croupier_operator_canary_state",
    "A ModelDeployment's rollout state (value 1): Waiting, Progressing, Serving, Complete, Paused, Halted or "
    "RolledBack.",
    [*_OBJECT, "version", "state"],
    registry=REGISTRY,
)
CANARY_ANALYSIS = Gauge(
    "croupier_operator_canary_analysis",
    "The canary's latest analysis interval (value 1): Passed, Failed or InsufficientData.",
    [*_OBJECT, "version", "result"],
    registry=REGISTRY,
)
CANARY_ERROR_RATE = Gauge(
    "croupier_operator_canary_error_rate",
    "Fraction of failed requests in the latest analysis interval, for the canary and (when measured) the stable "
    "version.",
    [*_OBJECT, "role"],
    registry=REGISTRY,
)
EXPERIMENT_EXPOSURES = Gauge(
    "croupier_operator_experiment_exposures",
    "Exposed units per variant of an Experiment's current epoch, as of its latest analysis.",
    [*_OBJECT, "variant"],
    registry=REGISTRY,
)
EXPERIMENT_SRM_P_VALUE = Gauge(
    "croupier_operator_experiment_srm_p_value",
    "p-value of the sample ratio mismatch test of an Experiment's split (below the threshold: SampleRatioMismatch).",
    _OBJECT,
    registry=REGISTRY,
)
EXPERIMENT_GUARDRAIL_VIOLATED = Gauge(
    "croupier_operator_experiment_guardrail_violated",
    "1 when a variant harms a guardrail metric beyond its threshold, 0 otherwise.",
    [*_OBJECT, "variant", "metric"],
    registry=REGISTRY,
)


def serve(host: str, port: int) -> None:
    """Start the metrics listener (a daemon thread); port 0 disables it."""
    if port:
        start_http_server(port, addr=host, registry=REGISTRY)
