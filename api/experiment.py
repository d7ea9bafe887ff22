"""Experiment (`exp`): an A/B/n test that splits units (users, sessions, ...) between variants and measures a metric.

Each variant targets a DecisionPolicy, a ModelDeployment version, or a static payload. Units are assigned by a
deterministic hash of their id, so any service in any language reproduces the assignment; the operator writes
per-variant exposures, lift with an interval, p-value or probability to beat control, the sample ratio mismatch test
and the winner to status. `state` is the user's intent (Running, Paused, Concluded); the operator never changes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import Field, model_validator

# The hash contract lives in croupier.api.assignment; these names stay importable from here.
from croupier.api.assignment import ALGORITHMS_DOC, BUCKETS, HashAlgorithm, assign, bucket  # noqa: F401
from croupier.api.common import (
    DNS_LABEL,
    ApiModel,
    Conditions,
    FreeFormObject,
    LabelSelector,
    LocalObjectReference,
    NetworkPeer,
    NetworkPolicySpec,
    cel,
    enforce,
    validated,
)
from croupier.api.decisionpolicy import AuthSpec, ServingSpec, StateBackend, StateSpec

KIND = "Experiment"
PLURAL = "experiments"
SINGULAR = "experiment"
SHORT_NAMES = ["exp"]

# Children are named `<name>-experiment` (a Service, so a DNS-1035 label of at most 63 characters): checked at
# admission, and again by the operator.
CHILD_SUFFIX = "-experiment"
MAX_NAME_LENGTH = 63 - len(CHILD_SUFFIX)
NAME_SCHEMA = {"maxLength": MAX_NAME_LENGTH, "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"}

MAX_VARIANTS = 16
MAX_GUARDRAILS = 16
METRIC_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"
MAX_ATTRIBUTION_WINDOW_SECONDS = 90 * 86400

# Assignment: the hashing contract every client implements byte for byte lives in `croupier.api.assignment`.

SHA256_V1_DOC = ALGORITHMS_DOC

# ----------------------------------------------------------------------------------------------------------------------
# Spec


class ExperimentState(StrEnum):
    RUNNING = "Running"
    PAUSED = "Paused"
    CONCLUDED = "Concluded"


class OnConclude(StrEnum):
    KEEP_WINNER = "KeepWinner"
    KEEP_CONTROL = "KeepControl"
    NOTHING = "Nothing"


class MetricType(StrEnum):
    BINARY = "Binary"
    CONTINUOUS = "Continuous"
    COUNT = "Count"


class Aggregation(StrEnum):
    """How a unit's outcomes of one metric become the unit's value."""

    SUM = "Sum"
    MEAN = "Mean"


class OutcomeSource(StrEnum):
    API = "Api"


class MultipleComparisons(StrEnum):
    HOLM = "Holm"
    BONFERRONI = "Bonferroni"
    NONE = "None"


class OnGuardrailViolation(StrEnum):
    NONE = "None"
    PAUSE = "Pause"
    CONCLUDE = "Conclude"


class Direction(StrEnum):
    INCREASE = "Increase"
    DECREASE = "Decrease"


class AnalysisMethod(StrEnum):
    FIXED_HORIZON = "FixedHorizon"
    SEQUENTIAL = "Sequential"
    BAYESIAN = "Bayesian"


class ModelVersionReference(ApiModel):
    """A version of a ModelDeployment in the same namespace (requests go to that TF Serving version directly)."""

    name: Annotated[
        str, Field(description="Name of the ModelDeployment.", min_length=1, max_length=253, pattern=r"^[a-z0-9.-]+$")
    ]
    version: Annotated[int, Field(description="TF Serving version number to send requests to.", ge=1, le=2**53)]


_ONE_TARGET = cel(
    "(has(self.decisionPolicyRef) ? 1 : 0) + (has(self.modelDeploymentRef) ? 1 : 0) + (has(self.payload) ? 1 : 0) == 1",
    "set exactly one target: decisionPolicyRef, modelDeploymentRef or payload",
)


class Variant(ApiModel):
    """One arm of the experiment: a share of the units and exactly one target they are sent to."""

    model_config = validated(_ONE_TARGET)

    name: Annotated[
        str,
        Field(
            description="Variant name, unique within the experiment (DNS-1123 label).",
            min_length=1,
            max_length=63,
            pattern=DNS_LABEL,
        ),
    ]
    weight: Annotated[
        int, Field(description="Percent of units assigned to this variant; all variants sum to 100.", ge=0, le=100)
    ]
    decision_policy_ref: Annotated[
        LocalObjectReference | None, Field(description="Target: a DecisionPolicy decides for these units.")
    ] = None
    model_deployment_ref: Annotated[
        ModelVersionReference | None,
        Field(
            description="Target: a ModelDeployment version serves these units (the runtime answers the route header "
            "the model router honours). The ModelDeployment must route with VersionLabels (its model router); "
            "otherwise, or while the version is not AVAILABLE there, the operator serves control and reports why "
            "(TargetNotSupported, TargetNotFound, TargetNotReady)."
        ),
    ] = None
    payload: Annotated[
        FreeFormObject | None,
        Field(description="Target: a static JSON object returned as is (e.g. a feature flag's configuration)."),
    ] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        targets = [self.decision_policy_ref, self.model_deployment_ref, self.payload]
        enforce((_ONE_TARGET, sum(t is not None for t in targets) == 1))
        return self


class AssignmentSpec(ApiModel):
    """How units are assigned to variants: deterministically, from a hash of the unit id and a salt."""

    unit_key: Annotated[
        str,
        Field(
            description="Request attribute that identifies the unit, e.g. userId or sessionId.",
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        ),
    ]
    salt: Annotated[
        str | None,
        Field(
            description="Salt of the hash; a new salt reshuffles every unit. Default: <namespace>/<name>.",
            min_length=1,
            max_length=253,
            pattern=r"^[A-Za-z0-9._/-]+$",
        ),
    ] = None
    algorithm: Annotated[HashAlgorithm, Field(description=f"Hashing scheme. {ALGORITHMS_DOC}")] = (
        HashAlgorithm.SHA256_V1
    )
    sticky: Annotated[
        bool,
        Field(
            description="Remember each unit's first variant in the runtime's store (SQLite or Redis), so a change of "
            "weights moves only new units. A change of the split starts a new epoch: units first assigned in an "
            "earlier epoch keep their variant but are not counted in the new epoch's statistics. A unit whose "
            "remembered variant was removed is assigned again by the hash over the current variants (and remembered "
            "anew). false: the variant is recomputed from the hash and the current weights on every request."
        ),
    ] = True


_TYPE_DOC = (
    "Binary (outcome values 0 or 1; a unit counts 1 once any of its outcomes is 1), Continuous (any finite number, "
    "negative too, e.g. a revenue delta; aggregated per unit by `aggregation`) or Count (non-negative integers, "
    "summed per unit)."
)
_AGGREGATION_DOC = (
    "Continuous only: Sum (a unit's value is the sum of its outcomes; exposed units without one count 0) or Mean "
    "(the mean of its outcomes; units without one are left out). Binary and Count use Sum."
)
_AGGREGATION_RULE = cel(
    "!has(self.aggregation) || self.aggregation == 'Sum' || self.type == 'Continuous'",
    "aggregation Mean applies to Continuous metrics only",
    field_path=".aggregation",
)


class MetricSpec(ApiModel):
    """The primary metric: the outcome the experiment is decided on."""

    model_config = validated(_AGGREGATION_RULE)

    name: Annotated[
        str,
        Field(description="Metric name as outcomes report it (e.g. conversion).", max_length=128, pattern=METRIC_NAME),
    ]
    type: Annotated[
        MetricType,
        Field(description=_TYPE_DOC),
    ]
    aggregation: Annotated[Aggregation, Field(description=_AGGREGATION_DOC)] = Aggregation.SUM
    direction: Annotated[Direction, Field(description="Which way is better: Increase or Decrease.")] = (
        Direction.INCREASE
    )
    minimum_detectable_effect: Annotated[
        float | None,
        Field(
            description="Smallest relative lift worth detecting (0.02 = 2%); with FixedHorizon it sets the planned "
            "sample size from alpha and power.",
            gt=0,
            le=10,
        ),
    ] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        _check_aggregation(self.type, self.aggregation)
        return self


class Guardrail(ApiModel):
    """A metric no variant may harm: it trips when a variant moves it the wrong way by more than the threshold."""

    model_config = validated(_AGGREGATION_RULE)

    name: Annotated[str, Field(description="Metric name (e.g. latency_ms).", max_length=128, pattern=METRIC_NAME)]
    type: Annotated[MetricType, Field(description=_TYPE_DOC)]
    aggregation: Annotated[Aggregation, Field(description=_AGGREGATION_DOC)] = Aggregation.SUM
    direction: Annotated[Direction, Field(description="Which way is better for this metric; the opposite way is harm.")]
    threshold: Annotated[
        float,
        Field(description="Largest tolerated relative harm versus control (0.05 = 5% worse).", ge=0, le=10),
    ]

    @model_validator(mode="after")
    def _rules(self) -> Self:
        _check_aggregation(self.type, self.aggregation)
        return self


def _check_aggregation(kind: str, aggregation: str) -> None:
    enforce((_AGGREGATION_RULE, aggregation == Aggregation.SUM or kind == MetricType.CONTINUOUS))


class OutcomesSpec(ApiModel):
    """Where outcomes come from and which of them count."""

    source: Annotated[
        OutcomeSource,
        Field(description="Api: clients send outcomes to the runtime's POST /v1/outcomes (single or batched)."),
    ] = OutcomeSource.API
    attribution_window_seconds: Annotated[
        int,
        Field(
            description="An outcome counts only if it arrives within this many seconds of the unit's first exposure "
            "in the current epoch (later ones are answered `late` and not counted).",
            ge=1,
            le=MAX_ATTRIBUTION_WINDOW_SECONDS,
        ),
    ] = 7 * 86400


class AnalysisSpec(ApiModel):
    """How the results are computed."""

    method: Annotated[
        AnalysisMethod,
        Field(
            description="FixedHorizon (a t-test once the planned sample size is reached), Sequential (always-valid "
            "p-values: safe to watch continuously) or Bayesian (probability to beat control; a winner needs at least "
            "1 - alpha)."
        ),
    ] = AnalysisMethod.SEQUENTIAL
    alpha: Annotated[float, Field(description="Significance level (false positive rate).", gt=0, lt=0.5)] = 0.05
    power: Annotated[float, Field(description="Power used to plan a FixedHorizon sample size.", gt=0, lt=1)] = 0.8
    minimum_samples_per_variant: Annotated[
        int,
        Field(
            description="Exposures every variant needs before results are reported (below: InsufficientTraffic).",
            ge=1,
            le=1_000_000_000,
        ),
    ] = 100
    srm_threshold: Annotated[
        float,
        Field(
            description="Sample ratio mismatch: an always-valid sequential p-value of the exposures against the "
            "weights (Dirichlet-multinomial mixture test) below this marks the experiment Degraded "
            "(SampleRatioMismatch) and withholds a winner; reading it at every analysis keeps the false-alarm "
            "rate within this threshold.",
            gt=0,
            lt=0.5,
        ),
    ] = 0.001
    sequential_tuning_sample_size: Annotated[
        int,
        Field(
            description="Sequential: the total sample size of one comparison (treatment plus control units, not "
            "per variant) at which the always-valid confidence sequence is tightest; it is the mixture's tuning "
            "parameter, the same number as GrowthBook's sequentialTuningParameter. See docs/statistics.md.",
            ge=10,
            le=1_000_000_000,
        ),
    ] = 5000
    multiple_comparisons: Annotated[
        MultipleComparisons,
        Field(
            description="Correction across the variants compared with control: Holm (step-down, controls the "
            "family-wise error rate at alpha), Bonferroni, or None (each comparison at alpha)."
        ),
    ] = MultipleComparisons.HOLM


_WEIGHTS_SUM = cel(
    "self.variants.map(v, v.weight).sum() == 100",
    "variants' weights must sum to 100",
    field_path=".variants",
)
_CONTROL_IS_VARIANT = cel(
    "self.variants.exists(v, v.name == self.control)",
    "control must name one of the variants",
    field_path=".control",
)
_CONTROL_HAS_TRAFFIC = cel(
    "self.variants.all(v, v.name != self.control || v.weight > 0)",
    "control needs a weight above 0: every other variant is compared with it",
    field_path=".control",
)
_GUARDRAIL_NOT_PRIMARY = cel(
    "!has(self.guardrails) || self.guardrails.all(g, g.name != self.metric.name)",
    "a guardrail must not be the primary metric",
    field_path=".guardrails",
)
_REPLICAS_NEED_REDIS = cel(
    "!has(self.serving) || self.serving.replicas <= 1 || (has(self.storage) && self.storage.backend == 'Redis')",
    "more than one replica needs storage.backend Redis (embedded state is per pod and would never merge)",
    field_path=".serving.replicas",
)

# The analysis settings a running epoch's sequential guarantee and SRM state rest on. The runtime's epoch fingerprints
# the split (variants, weights, targets, salt, algorithm) and these settings (`ExperimentSpec.epoch_settings`), so a
# change made while Paused resumes in a new epoch; while Running they may change only together with a new salt or
# algorithm (a new epoch, counted from zero); docs/statistics.md explains why.
_FROZEN_ANALYSIS = ("method", "alpha", "sequentialTuningSampleSize")
_FROZEN_METRIC = ("name", "type", "aggregation", "direction")
_SALT = "(has({0}.assignment.salt) ? {0}.assignment.salt : '')"
_ANALYSIS_FROZEN_WHILE_RUNNING = cel(
    "(self.state != 'Running' && oldSelf.state != 'Running') || "
    + " && ".join(
        [f"self.analysis.{f} == oldSelf.analysis.{f}" for f in _FROZEN_ANALYSIS]
        + [f"self.metric.{f} == oldSelf.metric.{f}" for f in _FROZEN_METRIC]
    ).join("()")
    + f" || {_SALT.format('self')} != {_SALT.format('oldSelf')}"
    + " || self.assignment.algorithm != oldSelf.assignment.algorithm",
    "analysis.method, analysis.alpha, analysis.sequentialTuningSampleSize and the primary metric (name, type, "
    "aggregation, direction) cannot change while Running in the same epoch: change assignment.salt with them to start "
    "a new epoch, or create a new Experiment",
    field_path=".analysis",
    reason="FieldValueForbidden",
)


class ExperimentNetworkPolicySpec(NetworkPolicySpec):
    """The NetworkPolicy the operator renders for the runtime pods (`<name>-experiment`): ingress only from the listed
    peers, the operator and the monitoring namespaces."""

    ingress: Annotated[
        list[NetworkPeer],
        Field(
            description="Who may call the experiment's API (assign, outcomes, exposures). The operator's pods (label "
            "app.kubernetes.io/name: croupier-operator) in the operator's own namespace are always allowed, for the "
            "stats read. Default: the pods of the experiment's own namespace.",
            max_length=32,
        ),
    ] = [NetworkPeer(pod_selector=LabelSelector())]


class ExperimentSpec(ApiModel):
    """Desired state of an Experiment: variants and their weights, assignment, metrics, analysis and intent."""

    model_config = validated(
        _WEIGHTS_SUM,
        _CONTROL_IS_VARIANT,
        _CONTROL_HAS_TRAFFIC,
        _GUARDRAIL_NOT_PRIMARY,
        _ANALYSIS_FROZEN_WHILE_RUNNING,
        _REPLICAS_NEED_REDIS,
    )

    variants: Annotated[
        list[Variant],
        Field(
            description="Two or more variants with unique names; weights sum to 100. Changing them (or the salt or "
            "algorithm) starts a new epoch: exposures, outcomes, the SRM test and the sequential state restart.",
            min_length=2,
            max_length=MAX_VARIANTS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ]
    control: Annotated[
        str,
        Field(
            description="Name of the variant others are compared with (lift, p-value, probability to beat control).",
            min_length=1,
            max_length=63,
            pattern=DNS_LABEL,
        ),
    ]
    assignment: Annotated[AssignmentSpec, Field(description="How units are assigned to variants.")]
    metric: Annotated[MetricSpec, Field(description="The primary metric.")]
    guardrails: Annotated[
        list[Guardrail] | None,
        Field(
            description="Metrics no variant may harm.",
            max_length=MAX_GUARDRAILS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None
    outcomes: Annotated[OutcomesSpec, Field(description="Where outcomes come from and their attribution window.")] = (
        OutcomesSpec()
    )
    analysis: Annotated[AnalysisSpec, Field(description="Statistical method and thresholds.")] = AnalysisSpec()
    on_guardrail_violation: Annotated[
        OnGuardrailViolation,
        Field(
            description="What a guardrail violation does: None (reported only), Pause (serve control and stop "
            "counting) or Conclude (stop counting and serve per onConclude; a variant that violated a guardrail "
            "never wins). Recorded in "
            "status.guardrailAction with the numbers."
        ),
    ] = OnGuardrailViolation.PAUSE
    state: Annotated[
        ExperimentState,
        Field(
            description="The user's intent: Running (assign and measure), Paused (serve control, stop counting) or "
            "Concluded (apply onConclude, stop counting)."
        ),
    ] = ExperimentState.RUNNING
    on_conclude: Annotated[
        OnConclude,
        Field(
            description="What serves once Concluded: KeepWinner (every unit gets the winner, or control when there is "
            "none), KeepControl (every unit gets control) or Nothing (units keep their variants)."
        ),
    ] = OnConclude.KEEP_WINNER
    serving: Annotated[
        ServingSpec,
        Field(
            description="The runtime pods, as a DecisionPolicy's: replicas (more than one needs storage.backend "
            "Redis, whose state the replicas share), an image override and container resources."
        ),
    ] = ServingSpec()
    storage: Annotated[
        StateSpec,
        Field(
            description="Where the runtime keeps sticky assignments, exposures, outcomes and the sums: Embedded "
            "(SQLite on a PersistentVolumeClaim of persistence.size and persistence.storageClassName; an emptyDir "
            "with persistence.enabled false) or Redis (redis.url or redis.urlSecretRef; redis.keyPrefix defaults "
            "to croupier:<namespace>:exp:<name>)."
        ),
    ] = StateSpec()
    auth: Annotated[
        AuthSpec,
        Field(
            description="Bearer tokens the runtime requires, as a DecisionPolicy's (default Secret <name>-auth, keys "
            "decide, rewards, admin): assign needs decide, outcomes and exposures rewards, stats admin."
        ),
    ] = AuthSpec()
    network_policy: Annotated[
        ExperimentNetworkPolicySpec,
        Field(description="Who may reach the runtime pods (a NetworkPolicy per experiment)."),
    ] = ExperimentNetworkPolicySpec()

    @model_validator(mode="after")
    def _rules(self) -> Self:
        names = [v.name for v in self.variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variants: duplicate variant names {duplicates}")
        enforce(
            (_WEIGHTS_SUM, sum(v.weight for v in self.variants) == 100),
            (_CONTROL_IS_VARIANT, self.control in names),
            (_CONTROL_HAS_TRAFFIC, all(v.name != self.control or v.weight > 0 for v in self.variants)),
            (_GUARDRAIL_NOT_PRIMARY, all(g.name != self.metric.name for g in self.guardrails or [])),
            (_REPLICAS_NEED_REDIS, self.serving.replicas <= 1 or self.storage.backend == StateBackend.REDIS),
        )
        return self

    def check_update(self, old: ExperimentSpec) -> None:
        """The Python side of the transition rule (``oldSelf``) the API server applies to an update from ``old``:
        raise ValueError when the analysis settings or the primary metric change while Running in the same epoch."""
        running = ExperimentState.RUNNING in (self.state, old.state)
        same_analysis = self.epoch_settings() == old.epoch_settings()
        new_epoch = (self.assignment.salt or "", self.assignment.algorithm) != (
            old.assignment.salt or "",
            old.assignment.algorithm,
        )
        enforce((_ANALYSIS_FROZEN_WHILE_RUNNING, not running or same_analysis or new_epoch))

    def epoch_settings(self) -> dict[str, Any]:
        """The analysis settings a running epoch rests on (those ``check_update`` keeps while Running), as the epoch
        fingerprint includes them besides the split: a Paused experiment whose settings changed resumes in a new
        epoch. Defaults are spelled out, so a setting written at its default keeps the epoch."""
        analysis = self.analysis.model_dump(mode="json", by_alias=True)
        metric = self.metric.model_dump(mode="json", by_alias=True)
        return {**{f: analysis[f] for f in _FROZEN_ANALYSIS}, "metric": {f: metric[f] for f in _FROZEN_METRIC}}

    def weights(self) -> list[tuple[str, int]]:
        """(variant, weight) in spec order: the input of :func:`assign`."""
        return [(v.name, v.weight) for v in self.variants]


def format_split(weights: Sequence[tuple[str, int]]) -> str:
    """``status.split`` as the Variants column shows it: ``control=34,bandit=33,ranker-v2=33``."""
    return ",".join(f"{name}={weight}" for name, weight in weights)


# ----------------------------------------------------------------------------------------------------------------------
# Status


class Reason(StrEnum):
    """Condition reasons the operator writes on an Experiment."""

    PAUSED = "Paused"
    CONCLUDED = "Concluded"
    INSUFFICIENT_TRAFFIC = "InsufficientTraffic"
    SAMPLE_RATIO_MISMATCH = "SampleRatioMismatch"
    GUARDRAIL_VIOLATED = "GuardrailViolated"
    WINNER_FOUND = "WinnerFound"
    NO_SIGNIFICANT_DIFFERENCE = "NoSignificantDifference"
    TARGET_NOT_FOUND = "TargetNotFound"
    TARGET_NOT_READY = "TargetNotReady"
    TARGET_NOT_SUPPORTED = "TargetNotSupported"
    """A variant targets a version of a ModelDeployment that routes with GatewayAPI, where no model router honours a
    version route (VersionLabels mode is supported); the runtime serves control."""
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    """The runtime's pods are not all serving the current configuration yet (or its statistics were not read yet)."""
    ROLLOUT_STALLED = "RolloutStalled"
    """The runtime's Deployment exceeded its progress deadline."""
    RUNTIME_UNREACHABLE = "RuntimeUnreachable"
    """The runtime's statistics could not be read (repeatedly), or are inconsistent."""
    INVALID_NAME = "InvalidName"
    """metadata.name cannot name the runtime's children."""
    INVALID_SPEC = "InvalidSpec"
    """The spec fails validation (the CRD rejects most of this at admission)."""


class Lift(ApiModel):
    """Relative difference of a variant's mean versus control's (0.05 = 5% higher), with its interval."""

    estimate: Annotated[float, Field(description="Point estimate of the relative lift.")]
    lower: Annotated[float, Field(description="Lower end of the interval (confidence or credible, 1 - alpha).")]
    upper: Annotated[float, Field(description="Upper end of the interval.")]


class GuardrailStatus(ApiModel):
    """One guardrail metric of one variant."""

    name: Annotated[str, Field(description="Guardrail metric name.", max_length=128)]
    mean: Annotated[float | None, Field(description="Mean of the metric for this variant.")] = None
    lift: Annotated[Lift | None, Field(description="Relative change versus control.")] = None
    violated: Annotated[bool, Field(description="The variant harms this metric beyond the threshold.")] = False


class MetricSums(ApiModel):
    """Sufficient statistics of one metric in one variant (current epoch): every result is recomputable from them."""

    name: Annotated[str, Field(description="Metric name (the primary metric or a guardrail).", max_length=128)]
    count: Annotated[
        int, Field(description="Units in the sample: exposed units (Mean: units with an outcome).", ge=0)
    ] = 0
    sum: Annotated[float, Field(description="Sum of the units' values (may be negative for Continuous).")] = 0.0
    sum_squares: Annotated[float, Field(description="Sum of the squares of the units' values.", ge=0)] = 0.0


class GuardrailAction(ApiModel):
    """What the operator did about a guardrail violation, with the numbers it acted on."""

    variant: Annotated[str, Field(description="The variant that harmed the metric.", max_length=63)]
    metric: Annotated[str, Field(description="The guardrail metric.", max_length=128)]
    lift: Annotated[Lift, Field(description="The variant's relative change of the metric versus control.")]
    threshold: Annotated[float, Field(description="The guardrail's threshold (largest tolerated relative harm).")]
    action: Annotated[
        OnGuardrailViolation, Field(description="spec.onGuardrailViolation applied: None, Pause, Conclude.")
    ]
    time: Annotated[datetime, Field(description="When the violation was acted on.")]
    epoch: Annotated[
        str | None,
        Field(
            description="The epoch whose data violated the guardrail: a new epoch (a changed split or analysis "
            "settings) clears the action and its data decides again.",
            max_length=64,
        ),
    ] = None


class FixedHorizonPlan(ApiModel):
    """FixedHorizon's planned sample size: computed once per epoch, from control's data as soon as a plan exists,
    and kept, so the goal does not move with control's running mean from one analysis to the next."""

    samples_per_variant: Annotated[
        int, Field(description="Units each variant needs before results are reported.", ge=1)
    ]
    epoch: Annotated[str, Field(description="The epoch the plan belongs to; a new epoch plans again.", max_length=64)]
    minimum_detectable_effect: Annotated[float, Field(description="spec.metric.minimumDetectableEffect planned for.")]
    alpha: Annotated[float, Field(description="spec.analysis.alpha planned for.")]
    power: Annotated[float, Field(description="spec.analysis.power planned for.")]
    computed_at: Annotated[datetime, Field(description="When the plan was computed.")]


class VariantStatus(ApiModel):
    """Results of one variant."""

    name: Annotated[str, Field(description="Variant name.", min_length=1, max_length=63)]
    exposures: Annotated[int, Field(description="Units assigned and exposed.", ge=0)] = 0
    outcomes: Annotated[
        float,
        Field(description="Sum of the primary metric over exposed units (conversions for Binary; may be negative)."),
    ] = 0.0
    mean: Annotated[float | None, Field(description="Metric mean per exposed unit.")] = None
    variance: Annotated[
        float | None, Field(description="Per-unit variance of the metric (Binary: the Bernoulli variance).", ge=0)
    ] = None
    lift: Annotated[Lift | None, Field(description="Lift versus control (unset for control itself).")] = None
    p_value: Annotated[
        float | None, Field(description="P-value versus control (FixedHorizon, Sequential).", ge=0, le=1)
    ] = None
    probability_to_beat_control: Annotated[
        float | None, Field(description="Posterior probability of beating control (Bayesian).", ge=0, le=1)
    ] = None
    expected_loss: Annotated[
        float | None,
        Field(
            description="Bayesian: the expected loss of choosing this variant over control, E[max(control - variant, "
            "0)] for an Increase metric (variant - control for Decrease), in the metric's units per unit; 6 "
            "significant digits.",
            ge=0,
        ),
    ] = None
    guardrails: Annotated[
        list[GuardrailStatus] | None,
        Field(
            description="Guardrail results of this variant.",
            max_length=MAX_GUARDRAILS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None
    metrics: Annotated[
        list[MetricSums] | None,
        Field(
            description="Count, sum and sum of squares of the primary metric and every guardrail.",
            max_length=MAX_GUARDRAILS + 1,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None


class PolicyToken(ApiModel):
    """Where the runtime's decide-scope token for one DecisionPolicy target comes from, as the operator last observed
    the policy (`spec.auth`) and its Secret (labelled croupier.dev/runtime-auth=true)."""

    policy: Annotated[str, Field(description="The DecisionPolicy's name.", min_length=1, max_length=63)]
    secret_name: Annotated[
        str, Field(description="The policy's auth Secret (its spec.auth.secretName, default <policy>-auth).",
                   min_length=1, max_length=253)
    ]  # fmt: skip
    key: Annotated[
        str, Field(description="The first of the policy's spec.auth.tokens keys with the decide scope.",
                   min_length=1, max_length=253)
    ]  # fmt: skip


class ExperimentStatus(ApiModel):
    """Observed state of an Experiment, written by the operator only."""

    observed_generation: Annotated[
        int | None, Field(description="The .metadata.generation the status was computed for.", ge=0)
    ] = None
    conditions: Conditions = None
    variants: Annotated[
        list[VariantStatus] | None,
        Field(
            description="Per-variant exposures, outcomes and results.",
            max_length=MAX_VARIANTS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None
    split: Annotated[
        str | None,
        Field(
            description="The split served now, e.g. control=34,bandit=33,ranker-v2=33 (Paused: control=100; "
            "Concluded: per onConclude).",
            max_length=2048,
        ),
    ] = None
    total_exposures: Annotated[int | None, Field(description="Exposures over all variants.", ge=0)] = None
    srm_p_value: Annotated[
        float | None,
        Field(
            description="Always-valid sequential p-value of the exposures against the weights (sample ratio "
            "mismatch; Dirichlet-multinomial mixture test, see docs/statistics.md).",
            ge=0,
            le=1,
        ),
    ] = None
    winner: Annotated[
        str | None, Field(description="The variant that beat control significantly (unset: none yet).", max_length=63)
    ] = None
    epoch: Annotated[
        str | None,
        Field(
            description="The fingerprint of the split (variants, weights, targets, salt, algorithm) and the analysis "
            "settings (method, alpha, sequentialTuningSampleSize, the primary metric's name, type, aggregation and "
            "direction) the results belong to; a change of either starts a new epoch.",
            max_length=64,
        ),
    ] = None
    epoch_start_time: Annotated[datetime | None, Field(description="When the current epoch started.")] = None
    plan: Annotated[
        FixedHorizonPlan | None,
        Field(
            description="FixedHorizon: the planned sample size of this epoch, frozen across analyses (planned again "
            "when the epoch, the MDE, alpha or power change); unset for other methods or before a plan exists."
        ),
    ] = None
    guardrail_action: Annotated[
        GuardrailAction | None, Field(description="The guardrail violation acted on (unset: none).")
    ] = None
    ready_targets: Annotated[
        list[Annotated[str, Field(max_length=320)]] | None,
        Field(
            description="The variants' targets the operator last observed Ready (DecisionPolicy/<name>, "
            "ModelDeployment/<name>/<version>). The runtime serves control (the served state is Paused) until every "
            "target of the spec is listed: a new Experiment, or a spec naming another target, never serves a target "
            "that was not checked.",
            max_length=MAX_VARIANTS,
        ),
    ] = None
    start_time: Annotated[datetime | None, Field(description="When the experiment first ran.")] = None
    last_analysis_time: Annotated[datetime | None, Field(description="When results were last computed.")] = None
    policy_tokens: Annotated[
        list[PolicyToken] | None,
        Field(
            description="The decide-scope token mounted into the runtime for each DecisionPolicy target whose auth "
            "Secret carries the label croupier.dev/runtime-auth=true (the render reads it: a change rolls the pod).",
            max_length=MAX_VARIANTS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["policy"]},
        ),
    ] = None


_READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
    {"name": "State", "type": "string", "jsonPath": ".spec.state"},
    # A printer column shows only the first match of a [*] path, so the operator writes the whole split to status.
    {"name": "Variants", "type": "string", "jsonPath": ".status.split"},
    {"name": "Winner", "type": "string", "jsonPath": ".status.winner"},
    {"name": "SRM", "type": "number", "jsonPath": ".status.srmPValue"},
    {"name": "Exposures", "type": "integer", "jsonPath": ".status.totalExposures", "priority": 1},
    {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
