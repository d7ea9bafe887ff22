"""Experiment (`exp`): an A/B/n test that splits units (users, sessions, ...) between variants and measures a metric.

Each variant targets a DecisionPolicy, a ModelDeployment version, or a static payload. Units are assigned by a
deterministic hash of their id, so any service in any language reproduces the assignment; the operator writes
per-variant exposures, lift with an interval, p-value or probability to beat control, the sample ratio mismatch test
and the winner to status. `state` is the user's intent (Running, Paused, Concluded); the operator never changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from croupier.api.common import (
    DNS_LABEL,
    ApiModel,
    Conditions,
    FreeFormObject,
    LocalObjectReference,
    cel,
    enforce,
    validated,
)

KIND = "Experiment"
PLURAL = "experiments"
SINGULAR = "experiment"
SHORT_NAMES = ["exp"]

MAX_VARIANTS = 16
MAX_GUARDRAILS = 16
METRIC_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"

# ----------------------------------------------------------------------------------------------------------------------
# Assignment: the hashing contract every client implements byte for byte.

BUCKETS = 10_000
"""Units hash into this many buckets; a variant of weight w owns w * BUCKETS / 100 consecutive buckets."""


class HashAlgorithm(StrEnum):
    SHA256_V1 = "sha256-v1"


SHA256_V1_DOC = (
    "sha256-v1: bucket = (first 8 bytes of SHA-256(UTF-8(salt + ':' + unitId)) as an unsigned big-endian integer) "
    "mod 10000; variants own consecutive bucket ranges in spec order, weight w owning w*100 buckets, so the unit gets "
    "the first variant whose cumulative range ends above its bucket."
)


def bucket(unit_id: str, salt: str, algorithm: str = HashAlgorithm.SHA256_V1) -> int:
    """The bucket in [0, BUCKETS) of a unit under ``salt`` (see :data:`SHA256_V1_DOC`)."""
    if algorithm != HashAlgorithm.SHA256_V1:
        raise ValueError(f"unknown assignment algorithm {algorithm!r}; known: {[a.value for a in HashAlgorithm]}")
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(unit_id: str, salt: str, weights: Sequence[tuple[str, int]]) -> str:
    """The variant a unit gets: ``weights`` are (variant name, percent) in spec order and sum to 100."""
    if sum(w for _, w in weights) != 100:
        raise ValueError("variant weights must sum to 100")
    point = bucket(unit_id, salt)
    upper = 0
    for name, weight in weights:
        upper += weight * (BUCKETS // 100)
        if point < upper:
            return name
    raise AssertionError("unreachable: weights sum to 100")


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
        ModelVersionReference | None, Field(description="Target: a ModelDeployment version serves these units.")
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
    algorithm: Annotated[HashAlgorithm, Field(description=f"Hashing scheme. {SHA256_V1_DOC}")] = HashAlgorithm.SHA256_V1
    sticky: Annotated[
        bool,
        Field(
            description="Remember each unit's first variant, so later weight changes move only new units "
            "(false: the variant is recomputed from the hash and the current weights on every request)."
        ),
    ] = True


class MetricSpec(ApiModel):
    """The primary metric: the outcome the experiment is decided on."""

    name: Annotated[
        str,
        Field(description="Metric name as outcomes report it (e.g. conversion).", max_length=128, pattern=METRIC_NAME),
    ]
    type: Annotated[
        MetricType,
        Field(description="Binary (0/1 per unit), Continuous (a number per unit) or Count (events per unit)."),
    ]
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


class Guardrail(ApiModel):
    """A metric no variant may harm: it trips when a variant moves it the wrong way by more than the threshold."""

    name: Annotated[str, Field(description="Metric name (e.g. latency_ms).", max_length=128, pattern=METRIC_NAME)]
    type: Annotated[MetricType, Field(description="Binary, Continuous or Count.")]
    direction: Annotated[Direction, Field(description="Which way is better for this metric; the opposite way is harm.")]
    threshold: Annotated[
        float,
        Field(description="Largest tolerated relative harm versus control (0.05 = 5% worse).", ge=0, le=10),
    ]


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
            description="Sample ratio mismatch: a chi-square p-value of the exposures against the weights below "
            "this marks the experiment Degraded (SampleRatioMismatch) and withholds a winner.",
            gt=0,
            lt=0.5,
        ),
    ] = 0.001


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


class ExperimentSpec(ApiModel):
    """Desired state of an Experiment: variants and their weights, assignment, metrics, analysis and intent."""

    model_config = validated(_WEIGHTS_SUM, _CONTROL_IS_VARIANT, _CONTROL_HAS_TRAFFIC, _GUARDRAIL_NOT_PRIMARY)

    variants: Annotated[
        list[Variant],
        Field(
            description="Two or more variants with unique names; weights sum to 100.",
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
    analysis: Annotated[AnalysisSpec, Field(description="Statistical method and thresholds.")] = AnalysisSpec()
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
        )
        return self

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

    RUNNING = "Running"
    PAUSED = "Paused"
    CONCLUDED = "Concluded"
    INSUFFICIENT_TRAFFIC = "InsufficientTraffic"
    SAMPLE_RATIO_MISMATCH = "SampleRatioMismatch"
    GUARDRAIL_VIOLATED = "GuardrailViolated"
    WINNER_FOUND = "WinnerFound"
    NO_SIGNIFICANT_DIFFERENCE = "NoSignificantDifference"
    TARGET_NOT_FOUND = "TargetNotFound"
    NOT_IMPLEMENTED = "NotImplemented"
    """This operator version does not reconcile the kind yet (Ready, Progressing and Degraded are False)."""


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


class VariantStatus(ApiModel):
    """Results of one variant."""

    name: Annotated[str, Field(description="Variant name.", min_length=1, max_length=63)]
    exposures: Annotated[int, Field(description="Units assigned and exposed.", ge=0)] = 0
    outcomes: Annotated[
        float, Field(description="Sum of the metric over exposed units (conversions for Binary).", ge=0)
    ] = 0.0
    mean: Annotated[float | None, Field(description="Metric mean per exposed unit.")] = None
    lift: Annotated[Lift | None, Field(description="Lift versus control (unset for control itself).")] = None
    p_value: Annotated[
        float | None, Field(description="P-value versus control (FixedHorizon, Sequential).", ge=0, le=1)
    ] = None
    probability_to_beat_control: Annotated[
        float | None, Field(description="Posterior probability of beating control (Bayesian).", ge=0, le=1)
    ] = None
    guardrails: Annotated[
        list[GuardrailStatus] | None,
        Field(
            description="Guardrail results of this variant.",
            max_length=MAX_GUARDRAILS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None


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
            description="Chi-square p-value of the exposures against the weights (sample ratio mismatch).", ge=0, le=1
        ),
    ] = None
    winner: Annotated[
        str | None, Field(description="The variant that beat control significantly (unset: none yet).", max_length=63)
    ] = None
    start_time: Annotated[datetime | None, Field(description="When the experiment first ran.")] = None
    last_analysis_time: Annotated[datetime | None, Field(description="When results were last computed.")] = None


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
