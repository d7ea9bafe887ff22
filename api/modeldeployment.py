"""ModelDeployment (`md`): a TensorFlow Serving model with an explicit stable version and an optional canary.

The operator runs TF Serving with the stable and canary versions loaded, shifts traffic to the canary (Gateway API
route weights, or TF Serving version labels chosen per request), advances through the canary steps while the analysis
passes, and rolls back when it fails. A version gets traffic only once TF Serving reports it AVAILABLE. Live weights are
written to status, never to spec: promotion is a spec change that git owns (set `stable.version` to the canary's).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from croupier.api.common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    ApiModel,
    Conditions,
    LabelSelector,
    LocalObjectReference,
    NetworkPeer,
    NetworkPolicySpec,
    ResourceRequirements,
    cel,
    enforce,
    validated,
)

KIND = "ModelDeployment"
PLURAL = "modeldeployments"
SINGULAR = "modeldeployment"
SHORT_NAMES = ["md"]

# The name names Services (`<name>`, `<name>-stable`, ... up to `<name>-canary-models`, 14 characters of suffix), so it
# must be a DNS-1035 label short enough for the longest child: checked at admission, and again by the operator.
MAX_NAME_LENGTH = 63 - len("-canary-models")
NAME_SCHEMA = {"maxLength": MAX_NAME_LENGTH, "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"}

DEFAULT_SERVING_IMAGE = "tensorflow/serving:2.18.0"
MAX_STEPS = 32
MAX_PARENT_REFS = 32
MAX_HOSTNAMES = 16
MAX_VERSIONS_IN_STATUS = 8
MAX_BATCH_SIZES = 32
MAX_QUERY_LENGTH = 4096
MAX_FAILURE_LIMIT = 100
MAX_ANALYSIS_HISTORY = 10

# TF Serving model names end up in model_config and in URLs (/v1/models/<name>): letters, digits, '-', '_', '.'.
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
# Where the SavedModels are: a base path whose children are numeric version folders (<uri>/1, <uri>/2, ...).
STORAGE_URI = (
    r"^(file:///[^\s]*|s3://[a-z0-9][a-z0-9.-]*[a-z0-9](/[^\s]*)?|gs://[a-z0-9][a-z0-9._-]*[a-z0-9](/[^\s]*)?"
    r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[^\s]*)?)$"
)
HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

ModelVersion = Annotated[int, Field(ge=1, le=2**53)]


class RoutingMode(StrEnum):
    GATEWAY_API = "GatewayAPI"
    VERSION_LABELS = "VersionLabels"


class Protocol(StrEnum):
    HTTP = "HTTP"
    GRPC = "GRPC"


class OnFailure(StrEnum):
    ROLLBACK = "Rollback"
    PAUSE = "Pause"


class MetricsSourceType(StrEnum):
    PROMETHEUS = "Prometheus"
    RUNTIME_STATS = "RuntimeStats"


_CREDENTIALS_FOR_BUCKETS = cel(
    "!has(self.credentialsSecretRef) || self.storageUri.startsWith('s3://') || self.storageUri.startsWith('gs://')",
    "credentialsSecretRef applies only to s3:// and gs:// storage (file:// and pvc:// need no credentials)",
    field_path=".credentialsSecretRef",
    reason="FieldValueForbidden",
)


class ModelSpec(ApiModel):
    """The model TF Serving loads: its name and where its numeric version folders live."""

    model_config = validated(_CREDENTIALS_FOR_BUCKETS)

    name: Annotated[
        str,
        Field(
            description="Model name as TF Serving serves it (/v1/models/<name>, gRPC ModelSpec.name).",
            min_length=1,
            max_length=128,
            pattern=MODEL_NAME,
        ),
    ]
    storage_uri: Annotated[
        str,
        Field(
            description="Base path of the model: its children are numeric version folders holding SavedModels "
            "(<storageUri>/1/saved_model.pb). One of file:///path (a path in the serving image or a mounted volume), "
            "s3://bucket/path, gs://bucket/path or pvc://claim/path.",
            max_length=2048,
            pattern=STORAGE_URI,
        ),
    ]
    credentials_secret_ref: Annotated[
        LocalObjectReference | None,
        Field(
            description="A Secret in the ModelDeployment's namespace with the storage credentials TF Serving reads. "
            "s3://: its keys become environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, "
            "optionally S3_ENDPOINT, S3_USE_HTTPS, S3_VERIFY_SSL). gs://: it is mounted read-only and its key "
            "`key.json` (a service-account key) becomes GOOGLE_APPLICATION_CREDENTIALS. Unset: the pod's own "
            "identity (workload identity, node credentials)."
        ),
    ] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        bucket = self.storage_uri.startswith(("s3://", "gs://"))
        enforce((_CREDENTIALS_FOR_BUCKETS, self.credentials_secret_ref is None or bucket))
        return self


class StableSpec(ApiModel):
    """The version that serves all traffic not sent to the canary."""

    version: Annotated[ModelVersion, Field(description="TF Serving version number (a numeric folder of storageUri).")]


class CanaryStep(ApiModel):
    """One step of a progressive canary: hold `weight` percent on the canary for `pauseSeconds`."""

    weight: Annotated[int, Field(description="Percent of traffic on the canary during this step.", ge=0, le=100)]
    pause_seconds: Annotated[
        int,
        Field(
            description="How long the step holds before the next one; with analysis, at least intervalSeconds, and "
            "the step advances only when its latest interval (measured within the step) passed.",
            ge=0,
            le=7 * 24 * 3600,
        ),
    ] = 300


class PrometheusQueries(ApiModel):
    """PromQL queries, each returning one number for one version over the last interval.

    Placeholders replaced before each query: {{model}}, {{version}}, {{namespace}}, {{name}} (the ModelDeployment)
    and {{interval}} (e.g. 60s). When the analysis compares against the stable version (maxErrorRateIncrease,
    maxP99LatencyRatio), the same queries run again with {{version}} set to the stable version. No series, NaN or an
    unreachable server is InsufficientData, never a pass.
    """

    requests: Annotated[
        str,
        Field(
            description="Requests the version served in the interval; fewer than minRequests is InsufficientData.",
            min_length=1,
            max_length=MAX_QUERY_LENGTH,
        ),
    ]
    error_rate: Annotated[
        str | None,
        Field(
            description="Fraction of failed requests (0 to 1); needed by maxErrorRate and maxErrorRateIncrease.",
            max_length=MAX_QUERY_LENGTH,
        ),
    ] = None
    p99_latency_milliseconds: Annotated[
        str | None,
        Field(
            description="99th percentile latency in milliseconds; needed by maxP99LatencyMilliseconds and "
            "maxP99LatencyRatio.",
            max_length=MAX_QUERY_LENGTH,
        ),
    ] = None


class PrometheusSource(ApiModel):
    """A Prometheus server the operator queries (its HTTP API, /api/v1/query)."""

    url: Annotated[
        str,
        Field(description="Base URL, e.g. http://prometheus.monitoring:9090.", pattern=r"^https?://", max_length=2048),
    ]
    queries: Annotated[PrometheusQueries, Field(description="The queries behind each threshold.")]


_PROMETHEUS_NEEDS_BLOCK = cel(
    "self.type != 'Prometheus' || has(self.prometheus)",
    "type Prometheus needs the prometheus block (url and queries)",
    field_path=".prometheus",
    reason="FieldValueRequired",
)
_PROMETHEUS_ONLY = cel(
    "!has(self.prometheus) || self.type == 'Prometheus'",
    "the prometheus block applies only when type is Prometheus",
    field_path=".prometheus",
    reason="FieldValueForbidden",
)


class MetricsSource(ApiModel):
    """Where the analysis reads each version's request count, error rate and latency."""

    model_config = validated(_PROMETHEUS_NEEDS_BLOCK, _PROMETHEUS_ONLY)

    type: Annotated[
        MetricsSourceType,
        Field(
            description="RuntimeStats: the operator scrapes TF Serving's own request counters and latency histograms "
            "(/monitoring/prometheus/metrics) from the canary's and the stable version's pods, and takes the "
            "difference between the scrapes that open and close each interval (no Prometheus needed). Prometheus: "
            "the queries below."
        ),
    ] = MetricsSourceType.RUNTIME_STATS
    prometheus: Annotated[PrometheusSource | None, Field(description="Prometheus server and queries.")] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        prometheus = self.type == MetricsSourceType.PROMETHEUS
        enforce(
            (_PROMETHEUS_NEEDS_BLOCK, not prometheus or self.prometheus is not None),
            (_PROMETHEUS_ONLY, self.prometheus is None or prometheus),
        )
        return self


_ERROR_RATE_QUERY = cel(
    "(!has(self.maxErrorRate) && !has(self.maxErrorRateIncrease)) || self.source.type != 'Prometheus' || "
    "!has(self.source.prometheus) || has(self.source.prometheus.queries.errorRate)",
    "maxErrorRate and maxErrorRateIncrease with a Prometheus source need source.prometheus.queries.errorRate",
    field_path=".maxErrorRate",
)
_LATENCY_QUERY = cel(
    "(!has(self.maxP99LatencyMilliseconds) && !has(self.maxP99LatencyRatio)) || self.source.type != 'Prometheus' || "
    "!has(self.source.prometheus) || has(self.source.prometheus.queries.p99LatencyMilliseconds)",
    "maxP99LatencyMilliseconds and maxP99LatencyRatio with a Prometheus source need "
    "source.prometheus.queries.p99LatencyMilliseconds",
    field_path=".maxP99LatencyMilliseconds",
)
_SOME_THRESHOLD = cel(
    "has(self.maxErrorRate) || has(self.maxP99LatencyMilliseconds) || has(self.maxErrorRateIncrease) || "
    "has(self.maxP99LatencyRatio)",
    "set maxErrorRate, maxP99LatencyMilliseconds, maxErrorRateIncrease or maxP99LatencyRatio: an analysis without a "
    "threshold cannot fail",
)


class CanaryAnalysis(ApiModel):
    """Health thresholds the canary must meet in every interval, absolute and relative to the stable version.

    An interval in which the canary (or, for the relative thresholds, the stable version) served fewer than
    minRequests requests, or whose measurements are missing (no series, NaN, source unreachable), is InsufficientData:
    it neither passes nor fails, and a step never advances on it. After maxInsufficientIntervals such intervals in a
    row the rollout halts at its current weight with reason InsufficientData."""

    model_config = validated(_SOME_THRESHOLD, _ERROR_RATE_QUERY, _LATENCY_QUERY)

    max_error_rate: Annotated[
        float | None, Field(description="Highest tolerated fraction of failed requests (0 to 1).", ge=0, le=1)
    ] = None
    max_p99_latency_milliseconds: Annotated[
        int | None, Field(description="Highest tolerated 99th percentile latency in milliseconds.", ge=1, le=600_000)
    ] = None
    max_error_rate_increase: Annotated[
        float | None,
        Field(
            description="Highest tolerated excess of the canary's error rate over the stable version's in the same "
            "interval, as a fraction (0.01: the canary may fail at most one more request in a hundred).",
            ge=0,
            le=1,
        ),
    ] = None
    max_p99_latency_ratio: Annotated[
        float | None,
        Field(
            description="Highest tolerated ratio of the canary's p99 latency to the stable version's in the same "
            "interval (1.5: at most 50% slower).",
            ge=1,
            le=100,
        ),
    ] = None
    min_requests: Annotated[
        int,
        Field(
            description="Requests each compared version must serve in an interval before its measurements count "
            "(at least 1: an interval without requests is never a pass).",
            ge=1,
            le=1_000_000_000,
        ),
    ] = 100
    interval_seconds: Annotated[int, Field(description="Length of one analysis interval.", ge=10, le=24 * 3600)] = 60
    failure_limit: Annotated[
        int,
        Field(
            description="Failed intervals tolerated for one canary version; the next failure triggers onFailure "
            "(0: act on the first).",
            ge=0,
            le=MAX_FAILURE_LIMIT,
        ),
    ] = 1
    max_insufficient_intervals: Annotated[
        int,
        Field(
            description="InsufficientData intervals in a row after which the rollout halts at its current weight "
            "(reason InsufficientData) until the canary spec changes.",
            ge=1,
            le=10_000,
        ),
    ] = 10
    source: Annotated[MetricsSource, Field(description="Where the measurements come from.")] = MetricsSource()

    @property
    def compares_with_stable(self) -> bool:
        """Whether a threshold is relative to the stable version (which then needs traffic of its own)."""
        return self.max_error_rate_increase is not None or self.max_p99_latency_ratio is not None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        prometheus = self.source.prometheus if self.source.type == MetricsSourceType.PROMETHEUS else None
        wants_errors = self.max_error_rate is not None or self.max_error_rate_increase is not None
        wants_latency = self.max_p99_latency_milliseconds is not None or self.max_p99_latency_ratio is not None
        enforce(
            (_SOME_THRESHOLD, wants_errors or wants_latency),
            (_ERROR_RATE_QUERY, not wants_errors or prometheus is None or bool(prometheus.queries.error_rate)),
            (
                _LATENCY_QUERY,
                not wants_latency or prometheus is None or bool(prometheus.queries.p99_latency_milliseconds),
            ),
        )
        return self


_WEIGHT_XOR_STEPS = cel(
    "has(self.weight) != has(self.steps)",
    "set exactly one of weight (a static split) or steps (a progressive rollout)",
    reason="FieldValueInvalid",
)
_STEPS_SORTED = cel(
    "!has(self.steps) || self.steps.map(s, s.weight).isSorted()",
    "steps' weights must not decrease",
    field_path=".steps",
)
_PAUSE_COVERS_INTERVAL = cel(
    "!has(self.analysis) || !has(self.steps) || self.steps.all(s, s.pauseSeconds >= self.analysis.intervalSeconds)",
    "with analysis, every step's pauseSeconds must be at least analysis.intervalSeconds (a step advances only on an "
    "interval measured within it)",
    field_path=".steps",
)
_STABLE_NEEDS_TRAFFIC = cel(
    "!has(self.analysis) || (!has(self.analysis.maxErrorRateIncrease) && !has(self.analysis.maxP99LatencyRatio)) || "
    "(has(self.steps) ? self.steps.all(s, s.weight < 100) : (!has(self.weight) || self.weight < 100))",
    "maxErrorRateIncrease and maxP99LatencyRatio compare with the stable version, which gets no traffic at weight "
    "100: keep every weight below 100",
    field_path=".analysis",
)


class CanarySpec(ApiModel):
    """A second version that gets a share of the traffic: a static weight, or steps that raise it over time."""

    model_config = validated(_WEIGHT_XOR_STEPS, _STEPS_SORTED, _PAUSE_COVERS_INTERVAL, _STABLE_NEEDS_TRAFFIC)

    version: Annotated[ModelVersion, Field(description="TF Serving version number of the canary.")]
    weight: Annotated[
        int | None, Field(description="Static percent of traffic on the canary (0 to 100).", ge=0, le=100)
    ] = None
    steps: Annotated[
        list[CanaryStep] | None,
        Field(
            description="Progressive rollout: weights in order (non-decreasing). After the last step the canary holds "
            "its weight until stable.version is set to the canary's version (promotion is a spec change).",
            min_length=1,
            max_length=MAX_STEPS,
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None
    paused: Annotated[
        bool,
        Field(
            description="Manual hold: the canary keeps its current weight and the steps stop; the analysis keeps "
            "running (a failing canary is still rolled back). Setting it back to false restarts the current step's "
            "pause."
        ),
    ] = False
    analysis: Annotated[
        CanaryAnalysis | None, Field(description="Health thresholds checked while the canary gets traffic.")
    ] = None
    on_failure: Annotated[
        OnFailure,
        Field(
            description="When more than failureLimit intervals failed: Rollback (canary weight 0 at once, recorded in "
            "status.rollout.rollback, until canary.version changes) or Pause (hold the current weight, reason in "
            "status.rollout.message, until the canary spec changes)."
        ),
    ] = OnFailure.ROLLBACK

    def weight_at(self, step: int | None) -> int:
        """The canary weight the spec asks for at ``step`` (the static weight when there are no steps)."""
        if self.steps is None:
            return int(self.weight or 0)
        if step is None or not 0 <= step < len(self.steps):
            raise IndexError(f"canary step {step} outside 0..{len(self.steps) - 1}")
        return self.steps[step].weight

    @model_validator(mode="after")
    def _rules(self) -> Self:
        weights = [s.weight for s in self.steps or []]
        analysis = self.analysis
        enforce(
            (_WEIGHT_XOR_STEPS, (self.weight is None) != (self.steps is None)),
            (_STEPS_SORTED, weights == sorted(weights)),
            (
                _PAUSE_COVERS_INTERVAL,
                analysis is None or all(s.pause_seconds >= analysis.interval_seconds for s in self.steps or []),
            ),
            (
                _STABLE_NEEDS_TRAFFIC,
                analysis is None
                or not analysis.compares_with_stable
                or all(w < 100 for w in (weights if self.steps is not None else [self.weight or 0])),
            ),
        )
        return self


class ParentReference(ApiModel):
    """A Gateway (Gateway API ParentReference) the route attaches to."""

    name: Annotated[str, Field(description="Name of the Gateway.", min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    namespace: Annotated[
        str | None,
        Field(
            description="Namespace of the Gateway (default: the ModelDeployment's).",
            min_length=1,
            max_length=63,
            pattern=DNS_LABEL,
        ),
    ] = None
    section_name: Annotated[
        str | None,
        Field(description="A listener of the Gateway.", min_length=1, max_length=253, pattern=DNS_SUBDOMAIN),
    ] = None
    port: Annotated[int | None, Field(description="A listener port of the Gateway.", ge=1, le=65535)] = None


_GATEWAY_NEEDS_PARENTS = cel(
    "self.mode != 'GatewayAPI' || (has(self.parentRefs) && size(self.parentRefs) > 0)",
    "mode GatewayAPI needs parentRefs (the Gateways that carry the route)",
    field_path=".parentRefs",
    reason="FieldValueRequired",
)
_GATEWAY_ONLY = cel(
    "self.mode == 'GatewayAPI' || (!has(self.parentRefs) && !has(self.hostnames))",
    "parentRefs and hostnames apply only to mode GatewayAPI",
    field_path=".parentRefs",
    reason="FieldValueForbidden",
)


class RoutingSpec(ApiModel):
    """How traffic is split between the stable and canary versions."""

    model_config = validated(_GATEWAY_NEEDS_PARENTS, _GATEWAY_ONLY)

    mode: Annotated[
        RoutingMode,
        Field(
            description="GatewayAPI: one TF Serving Deployment per version behind an HTTPRoute or GRPCRoute whose "
            "backend weights follow status. VersionLabels: one Deployment loading both versions, labelled stable and "
            "canary; Croupier's runtime picks the label per request by the canary weight."
        ),
    ] = RoutingMode.VERSION_LABELS
    protocol: Annotated[
        Protocol,
        Field(description="GRPC (TF Serving port 8500, GRPCRoute) or HTTP (REST port 8501, HTTPRoute)."),
    ] = Protocol.GRPC
    parent_refs: Annotated[
        list[ParentReference] | None,
        Field(
            description="Gateways the route attaches to (mode GatewayAPI).",
            max_length=MAX_PARENT_REFS,
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None
    hostnames: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=253, pattern=HOSTNAME)]] | None,
        Field(
            description="Hostnames the route matches (mode GatewayAPI; default: all of the Gateway's).",
            max_length=MAX_HOSTNAMES,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        gateway = self.mode == RoutingMode.GATEWAY_API
        enforce(
            (_GATEWAY_NEEDS_PARENTS, not gateway or bool(self.parent_refs)),
            (_GATEWAY_ONLY, gateway or (self.parent_refs is None and self.hostnames is None)),
        )
        return self


_LAST_BATCH_SIZE = cel(
    "!has(self.allowedBatchSizes) || self.allowedBatchSizes[size(self.allowedBatchSizes) - 1] == self.maxBatchSize",
    "the last allowed batch size must equal maxBatchSize (TF Serving requires it)",
    field_path=".allowedBatchSizes",
)
_BATCH_SIZES_SORTED = cel(
    "!has(self.allowedBatchSizes) || self.allowedBatchSizes.isSorted()",
    "allowedBatchSizes must increase",
    field_path=".allowedBatchSizes",
)


class BatchingSpec(ApiModel):
    """Server-side batching (TF Serving --enable_batching with a batching parameters file)."""

    model_config = validated(_LAST_BATCH_SIZE, _BATCH_SIZES_SORTED)

    max_batch_size: Annotated[int, Field(description="Largest batch TF Serving forms.", ge=1, le=1_000_000)] = 32
    batch_timeout_micros: Annotated[
        int,
        Field(description="How long a partial batch waits for more requests, in microseconds.", ge=0, le=10_000_000),
    ] = 1000
    num_batch_threads: Annotated[
        int | None,
        Field(description="Threads processing batches (default: TF Serving's, the CPU count).", ge=1, le=1024),
    ] = None
    max_enqueued_batches: Annotated[
        int | None, Field(description="Queue length before requests are rejected.", ge=1, le=1_000_000)
    ] = None
    allowed_batch_sizes: Annotated[
        list[Annotated[int, Field(ge=1, le=1_000_000)]] | None,
        Field(
            description="Batch sizes batches are padded to, increasing; the last must equal maxBatchSize.",
            min_length=1,
            max_length=MAX_BATCH_SIZES,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None
    pad_variable_length_inputs: Annotated[
        bool, Field(description="Pad inputs of different lengths to batch them together.")
    ] = False

    @model_validator(mode="after")
    def _rules(self) -> Self:
        sizes = self.allowed_batch_sizes
        enforce(
            (_LAST_BATCH_SIZE, not sizes or sizes[-1] == self.max_batch_size),
            (_BATCH_SIZES_SORTED, not sizes or sizes == sorted(sizes)),
        )
        return self


class ServingSpec(ApiModel):
    """The TF Serving pods."""

    image: Annotated[
        str,
        Field(description="TF Serving image (tensorflow/serving, or a build of it).", min_length=1, max_length=1024),
    ] = DEFAULT_SERVING_IMAGE
    replicas: Annotated[int, Field(description="TF Serving pods per Deployment.", ge=0, le=100)] = 1
    resources: Annotated[ResourceRequirements | None, Field(description="TF Serving container resources.")] = None
    batching: Annotated[BatchingSpec | None, Field(description="Server-side batching; unset disables it.")] = None


_CANARY_DIFFERS = cel(
    "!has(self.canary) || self.canary.version != self.stable.version",
    "canary.version must differ from stable.version",
    field_path=".canary.version",
)


class ModelNetworkPolicySpec(NetworkPolicySpec):
    """The NetworkPolicies the operator renders for the model's pods (`<name>-tfserving` for TF Serving, `<name>-router`
    for the model router, in both routing modes): ingress only from the listed peers, the operator and the monitoring
    namespaces."""

    ingress: Annotated[
        list[NetworkPeer],
        Field(
            description="Who may call the model, on the gRPC and REST ports: in VersionLabels mode the router's pods "
            "admit them (TF Serving then admits only the router); in GatewayAPI mode the TF Serving pods do, so list "
            "the Gateway's pods here. The DecisionPolicy runtimes of the namespace (model scoring) and the operator's "
            "pods (label app.kubernetes.io/name: croupier-operator) in the operator's own namespace (GetModelStatus) "
            "are always allowed. Default: the pods of the ModelDeployment's own namespace.",
            max_length=32,
        ),
    ] = [NetworkPeer(pod_selector=LabelSelector())]


class ModelDeploymentSpec(ApiModel):
    """Desired state of a ModelDeployment: the model, its explicit stable (and canary) versions, routing and serving."""

    model_config = validated(_CANARY_DIFFERS)

    model: Annotated[ModelSpec, Field(description="The model and where its versions are stored.")]
    stable: Annotated[StableSpec, Field(description="The version serving the traffic the canary does not get.")]
    canary: Annotated[
        CanarySpec | None, Field(description="A candidate version and how it gets traffic; unset: stable only.")
    ] = None
    routing: Annotated[RoutingSpec, Field(description="How traffic is split between versions.")] = RoutingSpec()
    serving: Annotated[ServingSpec, Field(description="TF Serving pods.")] = ServingSpec()
    progress_deadline_seconds: Annotated[
        int,
        Field(
            description="How long a version may take to become AVAILABLE in TF Serving (counted from when the "
            "operator first asked for it): past it the ModelDeployment is Degraded with TF Serving's own error text. "
            "The version keeps loading and gets traffic as soon as it is AVAILABLE.",
            ge=10,
            le=24 * 3600,
        ),
    ] = 600
    network_policy: Annotated[
        ModelNetworkPolicySpec,
        Field(description="Who may reach the model's pods (a NetworkPolicy for TF Serving and one for the router)."),
    ] = ModelNetworkPolicySpec()

    @model_validator(mode="after")
    def _rules(self) -> Self:
        enforce((_CANARY_DIFFERS, self.canary is None or self.canary.version != self.stable.version))
        return self


# ----------------------------------------------------------------------------------------------------------------------
# Status


class VersionRole(StrEnum):
    STABLE = "stable"
    CANARY = "canary"


class ModelVersionState(StrEnum):
    """A version's state as TF Serving's GetModelStatus reports it (Unknown: not reported, or unreachable)."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"
    UNKNOWN = "Unknown"


class AnalysisResult(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    INSUFFICIENT_DATA = "InsufficientData"


class RolloutState(StrEnum):
    """Where the canary rollout stands (status.rollout.state)."""

    WAITING = "Waiting"
    """The canary version is not AVAILABLE in TF Serving yet: weight 0, the step clock does not run."""
    PROGRESSING = "Progressing"
    """A step holds its weight until its pause is over (and, with analysis, its latest interval passed)."""
    SERVING = "Serving"
    """A static weight: held, analysed, until the spec changes."""
    COMPLETE = "Complete"
    """The last step is done: the canary holds its weight, still analysed, until promotion (a spec change)."""
    PAUSED = "Paused"
    """canary.paused is set: the weight holds and the steps stop; the analysis runs on."""
    HALTED = "Halted"
    """onFailure Pause, or too many InsufficientData intervals in a row: the weight holds, nothing advances and no
    analysis runs until the canary spec changes."""
    ROLLED_BACK = "RolledBack"
    """onFailure Rollback: weight 0 until canary.version changes."""


class Reason(StrEnum):
    """Condition reasons the operator writes on a ModelDeployment."""

    AVAILABLE = "Available"
    """Every version with traffic is AVAILABLE and the served split is the desired one."""
    INVALID_NAME = "InvalidName"
    INVALID_SPEC = "InvalidSpec"
    SCALED_TO_ZERO = "ScaledToZero"
    PODS_STARTING = "PodsStarting"
    """The TF Serving Deployment has no available pod with the current pod template yet."""
    VERSION_LOADING = "VersionLoading"
    """TF Serving is loading a version (START or LOADING), within the progress deadline."""
    VERSION_NOT_AVAILABLE = "VersionNotAvailable"
    """A version is not AVAILABLE past the progress deadline, for a reason TF Serving does not name more precisely."""
    VERSION_NOT_FOUND = "VersionNotFound"
    """The version's folder does not exist under storageUri (TF Serving: NOT_FOUND / no versions found)."""
    SAVED_MODEL_INVALID = "SavedModelInvalid"
    """The version folder holds no loadable SavedModel (TF Serving: DATA_LOSS / INVALID_ARGUMENT while loading)."""
    STORAGE_UNREADABLE = "StorageUnreadable"
    """storageUri cannot be read (TF Serving: PERMISSION_DENIED, UNAUTHENTICATED, or a file system error)."""
    MODEL_SERVER_UNREACHABLE = "ModelServerUnreachable"
    """GetModelStatus could not be called (the Service has no ready endpoint, or the call failed)."""
    WEIGHT_NOT_SERVED = "WeightNotServed"
    """The route (or the routing table) does not carry the desired split yet."""
    PROMOTING = "Promoting"
    """stable.version changed: the previous stable version serves until the new one is AVAILABLE."""
    STEP_IN_PROGRESS = "StepInProgress"
    WAITING_FOR_ANALYSIS = "WaitingForAnalysis"
    INSUFFICIENT_DATA = "InsufficientData"
    ANALYSIS_FAILED = "AnalysisFailed"
    ROLLED_BACK = "RolledBack"
    PAUSED = "Paused"
    CANARY_COMPLETE = "CanaryComplete"
    ROUTE_NOT_ACCEPTED = "RouteNotAccepted"
    AS_EXPECTED = "AsExpected"
    """Degraded=False: nothing is wrong."""


class VersionStatus(ApiModel):
    """One loaded version: its TF Serving state, its role and its live share of traffic."""

    version: Annotated[ModelVersion, Field(description="TF Serving version number.")]
    role: Annotated[VersionRole, Field(description="stable or canary.")]
    state: Annotated[
        ModelVersionState,
        Field(description="TF Serving GetModelStatus state: START, LOADING, AVAILABLE, UNLOADING, END or Unknown."),
    ] = ModelVersionState.UNKNOWN
    weight: Annotated[
        int, Field(description="Percent of traffic routed to this version now (0 unless AVAILABLE).", ge=0, le=100)
    ] = 0
    message: Annotated[
        str | None, Field(description="TF Serving's status message (e.g. a load error).", max_length=32768)
    ] = None
    requested_time: Annotated[
        datetime | None,
        Field(
            description="When a running TF Serving was first asked for this version (the progress deadline counts "
            "from here; pods still starting do not count)."
        ),
    ] = None


class AnalysisStatus(ApiModel):
    """One analysis interval of the canary, with the stable version's numbers when the analysis compares with it."""

    result: Annotated[
        AnalysisResult,
        Field(
            description="Passed, Failed, or InsufficientData (too few requests, a missing or NaN measurement, or an "
            "unreachable source; never counted as a pass)."
        ),
    ]
    start_time: Annotated[datetime, Field(description="When the interval began.")]
    end_time: Annotated[datetime, Field(description="When the interval ended.")]
    step: Annotated[int | None, Field(description="The canary step the interval belonged to.", ge=0)] = None
    weight: Annotated[int, Field(description="Canary weight during the interval.", ge=0, le=100)] = 0
    requests: Annotated[int | None, Field(description="Requests the canary served in the interval.", ge=0)] = None
    error_rate: Annotated[float | None, Field(description="The canary's fraction of failed requests.", ge=0)] = None
    p99_latency_milliseconds: Annotated[
        float | None, Field(description="The canary's 99th percentile latency in milliseconds.", ge=0)
    ] = None
    stable_requests: Annotated[
        int | None, Field(description="Requests the stable version served in the interval.", ge=0)
    ] = None
    stable_error_rate: Annotated[
        float | None, Field(description="The stable version's fraction of failed requests.", ge=0)
    ] = None
    stable_p99_latency_milliseconds: Annotated[
        float | None, Field(description="The stable version's 99th percentile latency in milliseconds.", ge=0)
    ] = None
    message: Annotated[
        str | None, Field(description="Which thresholds failed, or why data was insufficient.", max_length=4096)
    ] = None


class RollbackStatus(ApiModel):
    """A canary version the analysis rolled back: it gets no traffic until canary.version changes."""

    version: Annotated[ModelVersion, Field(description="The canary version that was rolled back.")]
    time: Annotated[datetime, Field(description="When it was rolled back.")]
    reason: Annotated[str, Field(description="Why: the thresholds that failed.", max_length=4096)]
    failed_intervals: Annotated[
        list[AnalysisStatus] | None,
        Field(
            description="The failed intervals behind the decision (the latest ones, oldest first).",
            max_length=MAX_ANALYSIS_HISTORY,
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None


class RolloutStatus(ApiModel):
    """The canary rollout as the operator drives it: step, clocks, analysis history, hold and rollback."""

    canary_version: Annotated[ModelVersion, Field(description="The canary version this rollout is for.")]
    spec_hash: Annotated[
        str,
        Field(description="Digest of the canary spec the rollout last saw (a change releases a halt).", max_length=64),
    ]
    state: Annotated[
        RolloutState,
        Field(description="Waiting, Progressing, Serving, Complete, Paused, Halted or RolledBack."),
    ]
    weight: Annotated[
        int,
        Field(description="Canary weight the rollout asks for now (0 unless the canary is AVAILABLE).", ge=0, le=100),
    ] = 0
    step: Annotated[int | None, Field(description="Index of the canary step in progress (steps rollouts).", ge=0)] = (
        None
    )
    step_start_time: Annotated[
        datetime | None, Field(description="When the current step began (or resumed) with the canary AVAILABLE.")
    ] = None
    next_analysis_time: Annotated[datetime | None, Field(description="When the current interval ends.")] = None
    failures: Annotated[
        int, Field(description="Failed intervals of this canary version since the rollout (re)started.", ge=0)
    ] = 0
    insufficient_intervals: Annotated[
        int, Field(description="InsufficientData intervals in a row (a pass or a failure resets it).", ge=0)
    ] = 0
    message: Annotated[
        str | None, Field(description="Why the rollout waits, is halted or rolled back.", max_length=4096)
    ] = None
    analyses: Annotated[
        list[AnalysisStatus] | None,
        Field(
            description=f"The latest analysis intervals, oldest first (at most {MAX_ANALYSIS_HISTORY}).",
            max_length=MAX_ANALYSIS_HISTORY,
            json_schema_extra={"x-kubernetes-list-type": "atomic"},
        ),
    ] = None
    rollback: Annotated[
        RollbackStatus | None, Field(description="Set when the analysis rolled this canary version back.")
    ] = None


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment, written by the operator only."""

    observed_generation: Annotated[
        int | None, Field(description="The .metadata.generation the status was computed for.", ge=0)
    ] = None
    conditions: Conditions = None
    versions: Annotated[
        list[VersionStatus] | None,
        Field(
            description="Every loaded version with its TF Serving state and live weight.",
            max_length=MAX_VERSIONS_IN_STATUS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["version"]},
        ),
    ] = None
    canary_weight: Annotated[
        int | None, Field(description="Percent of traffic on the canary now (the live weight).", ge=0, le=100)
    ] = None
    current_step: Annotated[
        int | None, Field(description="Index of the canary step in progress (rollout.step, for kubectl get).", ge=0)
    ] = None
    rollout: Annotated[
        RolloutStatus | None,
        Field(description="The canary rollout: step, clocks, latest analysis intervals, hold and rollback record."),
    ] = None
    endpoint: Annotated[str | None, Field(description="In-cluster gRPC address of the model (host:port).")] = None
    rest_endpoint: Annotated[str | None, Field(description="In-cluster REST URL of the model.")] = None


_READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.name", "priority": 1},
    {"name": "Stable", "type": "integer", "jsonPath": ".spec.stable.version"},
    {"name": "Canary", "type": "integer", "jsonPath": ".spec.canary.version"},
    {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.currentStep"},
    {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
