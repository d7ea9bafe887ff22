"""The runtime's wire format: the JSON bodies of the decision API and the experiment API served by runtime pods.

camelCase on the wire. Request models reject unknown fields; response models ignore unknown fields, so that an operator
that reads ``GET /v1/stats`` keeps working against a newer runtime that adds fields.

The runtime serves an OpenAPI document built from these models at ``GET /openapi.json``. Its hot path checks request
bodies by hand (same rules, same field names in errors); these models are the contract both sides are tested against.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from croupier.api.common import ApiModel
from croupier.api.decisionpolicy import MAX_ARMS, MAX_FEATURES

DECIDE_PATH = "/v1/decide"
RANK_PATH = "/v1/rank"
REWARDS_PATH = "/v1/rewards"
STATS_PATH = "/v1/stats"
ASSIGN_PATH = "/v1/assign"
EXPOSURES_PATH = "/v1/exposures"
OUTCOMES_PATH = "/v1/outcomes"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
OPENAPI_PATH = "/openapi.json"

DEFAULT_PORT = 8080
MAX_UNIT_ID_LENGTH = 256
MAX_DECISION_ID_LENGTH = 128
MAX_REWARDS_PER_REQUEST = 1000
MAX_BODY_BYTES = 1 << 20
MAX_EXPOSURES_PER_REQUEST = 1000
MAX_OUTCOMES_PER_REQUEST = 1000
MAX_EVENT_ID_LENGTH = 128
MAX_ATTRIBUTES = 64

FeatureName = Annotated[str, Field(min_length=1, max_length=128)]
ArmName = Annotated[str, Field(min_length=1, max_length=63)]
DecisionId = Annotated[str, Field(min_length=1, max_length=MAX_DECISION_ID_LENGTH)]
MAX_MAGNITUDE = 1e12
"""Bound on |reward| and |context value|: squares summed over many observations must stay finite float64."""

BoundedNumber = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
ContextObject = Annotated[dict[FeatureName, BoundedNumber], Field(max_length=MAX_FEATURES)]
ContextList = Annotated[list[BoundedNumber], Field(max_length=MAX_FEATURES)]


class WireResponse(ApiModel):
    """Base of response bodies: like ApiModel, but unknown fields are ignored (forward compatible readers)."""

    model_config = ConfigDict(**{**ApiModel.model_config, "extra": "ignore"})


# --- POST /v1/decide -------------------------------------------------------------------------------------------------


class DecideRequest(ApiModel):
    """Ask the policy for an arm."""

    unit_id: Annotated[
        str | None,
        Field(
            description="Who the decision is for (user, session, match); logged with the decision.",
            min_length=1,
            max_length=MAX_UNIT_ID_LENGTH,
        ),
    ] = None
    context: Annotated[
        ContextObject | ContextList | None,
        Field(
            description=(
                "Context features of a contextual policy: an object keyed by feature name (every feature of the "
                "policy, no others) or a list in the policy's feature order. Non-contextual policies log it only."
            ),
        ),
    ] = None
    candidates: Annotated[
        list[ArmName] | None,
        Field(
            description="Restrict the choice to these arms (unique names of the policy's arms); default: all arms.",
            min_length=1,
            max_length=MAX_ARMS,
        ),
    ] = None


class DecideResponse(WireResponse):
    """The chosen arm and the full probability vector it was drawn from (logged for off-policy evaluation)."""

    decision_id: Annotated[str, Field(description="Send it back with the reward.")]
    arm: Annotated[str, Field(description="The chosen arm.")]
    probabilities: Annotated[
        dict[str, float],
        Field(description="Probability of every eligible arm under the policy at decision time; sums to 1."),
    ]
    policy_version: Annotated[str, Field(description="Identifies the policy configuration that decided.")]


# --- POST /v1/rank ---------------------------------------------------------------------------------------------------


class RankRequest(DecideRequest):
    """Ask the policy for an ordered slate of `k` distinct arms (unitId, context and candidates as for decide)."""

    k: Annotated[
        int,
        Field(
            description="Slate size: 1 to the number of eligible arms (the candidates, or every arm).",
            ge=1,
            le=MAX_ARMS,
        ),
    ]


class SlatePosition(WireResponse):
    """One position of a slate: a decision of its own, rewarded by its decisionId at /v1/rewards."""

    position: Annotated[int, Field(description="From 1 (top).", ge=1)]
    arm: Annotated[str, Field(description="The arm placed at this position.")]
    decision_id: Annotated[str, Field(description="Send it back with this position's reward (e.g. a click).")]
    propensity: Annotated[
        float, Field(description="Probability of this arm at this position given the positions above.", gt=0, le=1)
    ]
    probabilities: Annotated[
        dict[str, float],
        Field(
            description="The conditional distribution this position was drawn from: every eligible arm not placed "
            "above; sums to 1."
        ),
    ]


class RankResponse(WireResponse):
    """The slate, top first; each position is logged as its own decision with its conditional vector."""

    slate_id: Annotated[str, Field(description="Identifies the slate (logged with each position's decision).")]
    policy_version: Annotated[str, Field(description="Identifies the policy configuration that ranked.")]
    slate: Annotated[list[SlatePosition], Field(description="k positions, top first.", min_length=1)]


# --- POST /v1/rewards ------------------------------------------------------------------------------------------------


class Reward(ApiModel):
    """The outcome of one decision."""

    decision_id: Annotated[DecisionId, Field(description="The decisionId returned by /v1/decide.")]
    reward: Annotated[BoundedNumber, Field(description="Binary policies: 0 or 1. Continuous: a number within +-1e12.")]


class RewardBatch(ApiModel):
    """Several rewards in one request: validated as a whole (one bad reward rejects the batch and changes nothing)."""

    rewards: Annotated[list[Reward], Field(min_length=1, max_length=MAX_REWARDS_PER_REQUEST)]


RewardRequest = Reward | RewardBatch


class RewardOutcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


class RewardResult(WireResponse):
    decision_id: Annotated[str, Field(description="The decision the reward was for.")]
    outcome: Annotated[
        RewardOutcome,
        Field(description="accepted: durable and learned; duplicate: this decision already had a reward (ignored)."),
    ]


class RewardResponse(WireResponse):
    """Sent only after every accepted reward is durable."""

    accepted: Annotated[int, Field(description="Rewards stored and learned by this request.", ge=0)]
    duplicates: Annotated[int, Field(description="Rewards ignored because their decision already had one.", ge=0)]
    results: Annotated[list[RewardResult], Field(description="One entry per reward, in request order.")]


# --- errors ----------------------------------------------------------------------------------------------------------


class ErrorResponse(WireResponse):
    """Every 4xx/5xx answer of the runtime."""

    status: Annotated[int, Field(description="The HTTP status code.")]
    error: Annotated[str, Field(description="Machine-readable error code in CamelCase, e.g. UnknownArm.")]
    message: Annotated[str, Field(description="What is wrong, for humans.")]
    field: Annotated[
        str | None, Field(description="The offending field, e.g. `candidates[2]` or `rewards[0].reward`.")
    ] = None


# --- GET /v1/stats ---------------------------------------------------------------------------------------------------


class ArmStats(WireResponse):
    """Live statistics of one arm (the runtime's view of `status.arms[]` of the DecisionPolicy)."""

    name: Annotated[str, Field(description="Arm name.")]
    pulls: Annotated[int, Field(description="Decisions that chose this arm.", ge=0)] = 0
    rewards: Annotated[
        int, Field(description="Rewards learned for those decisions (default rewards included).", ge=0)
    ] = 0
    reward_sum: Annotated[float, Field(description="Sum of the learned rewards.")] = 0.0
    mean: Annotated[float | None, Field(description="Mean learned reward; unset before the first reward.")] = None
    probability: Annotated[
        float | None,
        Field(description="Probability of choosing this arm now (non-contextual policies; unset for contextual)."),
    ] = None
    posterior: Annotated[
        dict[str, JsonValue],
        Field(description="The algorithm's per-arm parameters, e.g. {alpha, beta} of a Beta posterior."),
    ] = Field(default_factory=dict)


class StatsTotals(WireResponse):
    decisions: Annotated[int, Field(description="Decisions served.", ge=0)] = 0
    rewards: Annotated[int, Field(description="Rewards accepted (default rewards included).", ge=0)] = 0
    default_rewards: Annotated[
        int, Field(description="Decisions that got the default reward after the attribution window.", ge=0)
    ] = 0


class PolicyRef(WireResponse):
    name: Annotated[str, Field(description="metadata.name of the DecisionPolicy.")]
    namespace: Annotated[str | None, Field(description="metadata.namespace of the DecisionPolicy.")] = None


class ScoringStats(WireResponse):
    """A model-scored policy's scoring since the runtime started (spec.scoring)."""

    model_name: Annotated[str | None, Field(description="The model the runtime asks (unset: not configured).")] = None
    address: Annotated[str | None, Field(description="TF Serving's gRPC address the runtime calls.")] = None
    model_version: Annotated[int | None, Field(description="The model version of the last scored decision.")] = None
    decisions: Annotated[int, Field(description="Decisions of the policy, scored or not.", ge=0)] = 0
    fallbacks: Annotated[dict[str, int], Field(description="Decisions the fallback served, by reason.")] = {}
    fallback_rate: Annotated[
        float | None, Field(description="fallbacks / decisions (unset before the first decision).", ge=0, le=1)
    ] = None


class StatsResponse(WireResponse):
    """What the operator polls to fill the DecisionPolicy's status."""

    policy: Annotated[PolicyRef, Field(description="The DecisionPolicy served.")]
    generation: Annotated[
        int | None, Field(description="metadata.generation of the served DecisionPolicy (unset when unknown).")
    ] = None
    policy_version: Annotated[str, Field(description="Identifies the served configuration (as in decide answers).")]
    algorithm: Annotated[str, Field(description="spec.algorithm.type.")]
    paused: Annotated[bool, Field(description="Learning is paused (spec.paused).")] = False
    backend: Annotated[str, Field(description="State backend: Embedded or Redis.")]
    replica: Annotated[str | None, Field(description="Identity of the answering runtime process.")] = None
    arms: Annotated[list[ArmStats], Field(description="One entry per arm, in spec order.")]
    totals: Annotated[StatsTotals, Field(description="Totals over all arms.")]
    best_arm: Annotated[
        str | None, Field(description="Arm with the highest mean reward (unset before any reward).")
    ] = None
    scoring: Annotated[ScoringStats | None, Field(description="Model-scored policies: the model's share.")] = None


# --- health ----------------------------------------------------------------------------------------------------------


class HealthResponse(WireResponse):
    status: Annotated[str, Field(description="`ok` when healthy; otherwise what is wrong.")]
    detail: Annotated[str | None, Field(description="Why the runtime is not ready, when it is not.")] = None


# --- experiments: POST /v1/assign ------------------------------------------------------------------------------------

UnitId = Annotated[str, Field(min_length=1, max_length=MAX_UNIT_ID_LENGTH)]
AttributeValue = str | bool | BoundedNumber | None


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class AssignRequest(ApiModel):
    """Ask which variant a unit gets (and what that variant serves). The unit's first assignment in the current epoch
    logs its exposure. The unit is ``unitId`` or, without it, ``attributes[spec.assignment.unitKey]`` (a string): one
    of the two is required, and ``unitId`` is never null (omit it instead)."""

    unit_id: Annotated[
        UnitId | SkipJsonSchema[None],
        Field(
            description="The unit (spec.assignment.unitKey's value: a user id, a session). Optional: without it the "
            "unit is attributes[spec.assignment.unitKey]. Never null: omit the field instead.",
            json_schema_extra=_no_default,
        ),
    ] = None
    attributes: Annotated[
        dict[FeatureName, AttributeValue] | None,
        Field(
            description="Attributes of the unit (strings, numbers, booleans); passed to a DecisionPolicy target as "
            "its context when `context` is unset and the values are numbers.",
            max_length=MAX_ATTRIBUTES,
        ),
    ] = None
    context: Annotated[
        ContextObject | ContextList | None,
        Field(description="Context sent as is to a DecisionPolicy target's /v1/decide (contextual policies)."),
    ] = None

    @field_validator("unit_id", mode="before")
    @classmethod
    def _unit_id_not_null(cls, value: Any) -> Any:
        if value is None:  # only when sent: an omitted unitId keeps its default without validation
            raise ValueError("unitId must be a string, got null (omit it to take the unit from the attributes)")
        return value

    @model_validator(mode="after")
    def _a_unit(self) -> Self:
        if self.unit_id is None and not self.attributes:
            raise ValueError("unitId or attributes[spec.assignment.unitKey] is required")
        return self


class PolicyDecision(WireResponse):
    """A DecisionPolicy target's decision: reward it at that policy's /v1/rewards with the decisionId."""

    policy: Annotated[str, Field(description="metadata.name of the DecisionPolicy.")]
    decision_id: Annotated[str, Field(description="Send it back with the reward to the policy's runtime.")]
    arm: Annotated[str, Field(description="The arm the policy chose.")]
    probabilities: Annotated[dict[str, float], Field(description="The policy's probability of every eligible arm.")]
    policy_version: Annotated[str, Field(description="The policy configuration that decided.")]


class ModelRoute(WireResponse):
    """A ModelDeployment version target: send the unit's inference requests with this header; the model router
    routes them to that TF Serving version."""

    name: Annotated[str, Field(description="metadata.name of the ModelDeployment.")]
    version: Annotated[int, Field(description="TF Serving version number.")]
    header: Annotated[str, Field(description="The request header the model router honours.")]
    value: Annotated[str, Field(description="The header's value (the version number).")]


class AssignResponse(WireResponse):
    """The unit's variant and its target (exactly one of payload, decision, model)."""

    variant: Annotated[str, Field(description="The variant the unit gets.")]
    experiment_version: Annotated[str, Field(description="Identifies the served configuration of the Experiment.")]
    epoch: Annotated[
        str,
        Field(
            description="The epoch's fingerprint (the split, the salt and the analysis settings); exposures and "
            "outcomes count per epoch."
        ),
    ]
    counted: Annotated[
        bool,
        Field(
            description="The unit counts in the current epoch's statistics (false: Paused, Concluded, or a sticky "
            "unit first assigned in an earlier epoch)."
        ),
    ]
    payload: Annotated[dict[str, JsonValue] | None, Field(description="A static payload target.")] = None
    decision: Annotated[PolicyDecision | None, Field(description="A DecisionPolicy target's decision.")] = None
    model: Annotated[ModelRoute | None, Field(description="A ModelDeployment version target's route.")] = None


# --- experiments: POST /v1/exposures ---------------------------------------------------------------------------------


class Exposure(ApiModel):
    """A unit exposed to a variant it computed itself from the hash contract (local assignment in an SDK)."""

    unit_id: Annotated[UnitId, Field(description="The unit.")]
    variant: Annotated[str, Field(description="The variant the SDK computed and served.", min_length=1, max_length=63)]
    epoch: Annotated[
        str | None,
        Field(
            description="The epoch the SDK computed it for (from its configuration); another epoch is answered stale.",
            min_length=1,
            max_length=64,
        ),
    ] = None


class ExposureBatch(ApiModel):
    """Several exposures, validated as a whole (one bad item rejects the batch and changes nothing)."""

    exposures: Annotated[list[Exposure], Field(min_length=1, max_length=MAX_EXPOSURES_PER_REQUEST)]


ExposureRequest = Exposure | ExposureBatch


class ExposureOutcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    MISMATCH = "mismatch"
    STALE = "stale"
    NOT_COUNTING = "notCounting"


class ExposureResult(WireResponse):
    unit_id: Annotated[str, Field(description="The unit.")]
    outcome: Annotated[
        ExposureOutcome,
        Field(
            description="recorded: durable and counted (or, for a sticky unit from an earlier epoch, recorded "
            "uncounted); duplicate: the unit was already exposed in this epoch; mismatch: the variant is not the "
            "one the runtime assigns the unit (not recorded); stale: another epoch (not recorded); notCounting: "
            "the experiment is Paused or Concluded."
        ),
    ]
    variant: Annotated[str, Field(description="The variant the runtime assigns the unit.")]


class ExposureResponse(WireResponse):
    """Sent only after every recorded exposure is durable."""

    recorded: Annotated[int, Field(description="Exposures recorded by this request.", ge=0)]
    results: Annotated[list[ExposureResult], Field(description="One entry per exposure, in request order.")]


# --- experiments: POST /v1/outcomes ----------------------------------------------------------------------------------


class Outcome(ApiModel):
    """One observation of a metric for a unit."""

    unit_id: Annotated[UnitId, Field(description="The unit the outcome belongs to.")]
    metric: Annotated[
        str, Field(description="The primary metric's or a guardrail's name.", min_length=1, max_length=128)
    ]
    value: Annotated[
        BoundedNumber,
        Field(description="Binary: 0 or 1. Count: a non-negative integer. Continuous: any finite number."),
    ]
    event_id: Annotated[
        str | None,
        Field(
            description="Idempotency key: an outcome with an eventId seen before is a duplicate (not counted again).",
            min_length=1,
            max_length=MAX_EVENT_ID_LENGTH,
        ),
    ] = None


class OutcomeBatch(ApiModel):
    """Several outcomes, validated as a whole (one bad item rejects the batch and changes nothing)."""

    outcomes: Annotated[list[Outcome], Field(min_length=1, max_length=MAX_OUTCOMES_PER_REQUEST)]


OutcomeRequest = Outcome | OutcomeBatch


class OutcomeStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNEXPOSED = "unexposed"
    LATE = "late"
    NOT_COUNTED = "notCounted"


class OutcomeResult(WireResponse):
    unit_id: Annotated[str, Field(description="The unit.")]
    event_id: Annotated[str | None, Field(description="The outcome's eventId, if it had one.")] = None
    outcome: Annotated[
        OutcomeStatus,
        Field(
            description="accepted: durable and counted; duplicate: its eventId was seen before; unexposed: the unit "
            "has no exposure in this epoch; late: outside the attribution window; notCounted: the unit does not "
            "count (Paused, Concluded, or a sticky unit from an earlier epoch)."
        ),
    ]


class OutcomeResponse(WireResponse):
    """Sent only after every accepted outcome is durable."""

    accepted: Annotated[int, Field(description="Outcomes stored and counted by this request.", ge=0)]
    results: Annotated[list[OutcomeResult], Field(description="One entry per outcome, in request order.")]


# --- experiments: GET /v1/stats --------------------------------------------------------------------------------------


class MetricStats(WireResponse):
    """Sufficient statistics of one metric in one variant (current epoch)."""

    name: Annotated[str, Field(description="Metric name.")]
    type: Annotated[str, Field(description="Binary, Continuous or Count.")]
    aggregation: Annotated[str, Field(description="Sum or Mean (how a unit's outcomes become its value).")]
    count: Annotated[int, Field(description="Units in the sample (Sum: exposed units; Mean: units with an outcome).")]
    sum: Annotated[float, Field(description="Sum of the units' values.")]
    sum_squares: Annotated[float, Field(description="Sum of the squares of the units' values.")]


class VariantStats(WireResponse):
    name: Annotated[str, Field(description="Variant name.")]
    weight: Annotated[int, Field(description="Percent of units in the current split.")]
    exposures: Annotated[int, Field(description="Counted exposures in the current epoch.", ge=0)]
    metrics: Annotated[list[MetricStats], Field(description="The primary metric first, then each guardrail.")]


class ExperimentRef(WireResponse):
    name: Annotated[str, Field(description="metadata.name of the Experiment.")]
    namespace: Annotated[str | None, Field(description="metadata.namespace of the Experiment.")] = None


class ExperimentStatsResponse(WireResponse):
    """What the operator polls to fill the Experiment's status."""

    experiment: Annotated[ExperimentRef, Field(description="The Experiment served.")]
    generation: Annotated[int | None, Field(description="metadata.generation of the served Experiment.")] = None
    experiment_version: Annotated[str, Field(description="Identifies the served configuration.")]
    epoch: Annotated[
        str, Field(description="The current epoch (the fingerprint of the split, the salt and the analysis settings).")
    ]
    epoch_start_time: Annotated[float, Field(description="When the epoch started (Unix seconds).")]
    state: Annotated[str, Field(description="The served state: Running, Paused or Concluded.")]
    backend: Annotated[str, Field(description="State backend: Embedded or Redis.")]
    replica: Annotated[str | None, Field(description="Identity of the answering runtime process.")] = None
    variants: Annotated[list[VariantStats], Field(description="One entry per variant, in spec order.")]
    total_exposures: Annotated[int, Field(description="Counted exposures over all variants.", ge=0)]
