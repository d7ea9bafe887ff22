"""DecisionPolicy (`dp`): a multi-armed or contextual bandit served by Croupier's runtime pods.

The operator renders this spec into a ConfigMap, a runtime Deployment, a Service and a PodDisruptionBudget; the runtime
loads the same spec (from the ConfigMap, or from the user's YAML when run locally) to build its policy.
"""

from __future__ import annotations

import re
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
    ResourceRequirements,
    cel,
    enforce,
    validated,
)
from croupier.api.common import NetworkPolicySpec as CommonNetworkPolicySpec

KIND = "DecisionPolicy"
PLURAL = "decisionpolicies"
SINGULAR = "decisionpolicy"
SHORT_NAMES = ["dp"]

# The policy's name names its Service, so it must be a DNS-1035 label (what a Service name may be).
NAME_SCHEMA = {"maxLength": 63, "pattern": r"^[a-z]([-a-z0-9]*[a-z0-9])?$"}

MAX_ARMS = 256
MAX_FEATURES = 512
# The bound of every feature value, an arm's as a request's context (`croupier.api.wire.MAX_MAGNITUDE`, which imports
# this module; tests/unit/scoring keeps the two equal).
MAX_MAGNITUDE = 1e12


class Algorithm(StrEnum):
    EPSILON_GREEDY = "EpsilonGreedy"
    UCB1 = "UCB1"
    THOMPSON_SAMPLING = "ThompsonSampling"
    SOFTMAX = "Softmax"
    LIN_UCB = "LinUCB"
    LINEAR_THOMPSON = "LinearThompson"


CONTEXTUAL_ALGORITHMS = frozenset({Algorithm.LIN_UCB, Algorithm.LINEAR_THOMPSON})


class Likelihood(StrEnum):
    BERNOULLI = "Bernoulli"
    GAUSSIAN = "Gaussian"


class RewardType(StrEnum):
    BINARY = "Binary"
    CONTINUOUS = "Continuous"


class StateBackend(StrEnum):
    EMBEDDED = "Embedded"
    REDIS = "Redis"


class ScoringFallback(StrEnum):
    POLICY = "Policy"
    UNIFORM = "Uniform"


class ArmPrior(ApiModel):
    """Prior belief about an arm, as pseudo-observations: `weight` pulls whose rewards averaged `mean`."""

    mean: Annotated[float, Field(description="Prior mean reward of the arm (in [0, 1] for Binary rewards).")]
    weight: Annotated[
        float,
        Field(description="How many observations the prior is worth; 0 means no prior.", ge=0, le=1_000_000),
    ] = 1.0


FEATURE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"
_FEATURE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_ARM_FEATURE_NAMES = cel(
    "!has(self.features) || self.features.all(k, size(k) <= 128 && k.matches('" + FEATURE_NAME_PATTERN + "'))",
    "feature names start with a letter or '_' and hold letters, digits, '_', '.', ':' or '-' (at most 128)",
    field_path=".features",
)


class Arm(ApiModel):
    """One action the policy can choose."""

    model_config = validated(_ARM_FEATURE_NAMES)

    name: Annotated[
        str,
        Field(
            description="Arm name, unique within the policy (DNS-1123 label, e.g. `blue-banner`).",
            min_length=1,
            max_length=63,
            pattern=DNS_LABEL,
        ),
    ]
    prior: Annotated[ArmPrior | None, Field(description="Optional prior for this arm.")] = None
    features: Annotated[
        dict[str, Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]] | None,
        Field(
            description=(
                "Numeric features of the arm, by name (model-scored policies only: sent to the model with every "
                "decision, in sorted name order). Every arm names the same features."
            ),
            max_length=MAX_FEATURES,
        ),
    ] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        enforce((_ARM_FEATURE_NAMES, self.features is None or all(_FEATURE_NAME.match(k) for k in self.features)))
        return self

    def feature_vector(self, names: list[str]) -> list[float]:
        """The arm's feature values in the order of ``names`` (the spec's rules make every arm name the same)."""
        features = self.features or {}
        return [float(features[n]) for n in names]


class EpsilonGreedyParams(ApiModel):
    """Explore uniformly with probability epsilon, otherwise exploit the best mean."""

    epsilon: Annotated[float, Field(description="Exploration probability.", ge=0, le=1)] = 0.1


class UCB1Params(ApiModel):
    """Upper confidence bound: mean + sqrt(c * ln(N) / n)."""

    c: Annotated[float, Field(description="Exploration coefficient (2 is the textbook UCB1).", ge=0, le=100)] = 2.0


class ThompsonSamplingParams(ApiModel):
    """Thompson sampling with a conjugate posterior per arm."""

    likelihood: Annotated[
        Likelihood,
        Field(description="Bernoulli (Beta posterior, Binary rewards) or Gaussian (Normal posterior)."),
    ] = Likelihood.BERNOULLI


class SoftmaxParams(ApiModel):
    """Boltzmann exploration: P(arm) proportional to exp(mean / temperature)."""

    temperature: Annotated[float, Field(description="Temperature; lower exploits more.", gt=0, le=1000)] = 0.1


class LinUCBParams(ApiModel):
    """Disjoint LinUCB: per-arm ridge regression on the context with an upper confidence bonus."""

    alpha: Annotated[float, Field(description="Width of the confidence bonus.", ge=0, le=100)] = 1.0
    regularization: Annotated[float, Field(description="Ridge regularization (lambda).", gt=0, le=1e6)] = 1.0


class LinearThompsonParams(ApiModel):
    """Linear Thompson sampling: per-arm Bayesian linear regression, sampled per decision."""

    v: Annotated[float, Field(description="Posterior scale (exploration).", gt=0, le=100)] = 0.25
    regularization: Annotated[float, Field(description="Ridge regularization (lambda).", gt=0, le=1e6)] = 1.0


def _only_for(field: str, algorithm: StrEnum) -> dict[str, str]:
    return cel(
        f"!has(self.{field}) || self.type == '{algorithm.value}'",
        f"{field} parameters apply only when type is {algorithm.value}",
        field_path=f".{field}",
    )


_PARAM_FIELDS = {
    "epsilonGreedy": Algorithm.EPSILON_GREEDY,
    "ucb1": Algorithm.UCB1,
    "thompsonSampling": Algorithm.THOMPSON_SAMPLING,
    "softmax": Algorithm.SOFTMAX,
    "linUCB": Algorithm.LIN_UCB,
    "linearThompson": Algorithm.LINEAR_THOMPSON,
}


class AlgorithmSpec(ApiModel):
    """Which bandit algorithm serves decisions, and its parameters (only the block matching `type` may be set)."""

    model_config = validated(*(_only_for(f, a) for f, a in _PARAM_FIELDS.items()))

    type: Annotated[Algorithm, Field(description="The algorithm.")]
    epsilon_greedy: Annotated[EpsilonGreedyParams | None, Field(description="Parameters of EpsilonGreedy.")] = None
    ucb1: Annotated[UCB1Params | None, Field(alias="ucb1", description="Parameters of UCB1.")] = None
    thompson_sampling: Annotated[
        ThompsonSamplingParams | None, Field(description="Parameters of ThompsonSampling.")
    ] = None
    softmax: Annotated[SoftmaxParams | None, Field(description="Parameters of Softmax.")] = None
    lin_ucb: Annotated[LinUCBParams | None, Field(alias="linUCB", description="Parameters of LinUCB.")] = None
    linear_thompson: Annotated[LinearThompsonParams | None, Field(description="Parameters of LinearThompson.")] = None

    def params(self) -> dict[str, object]:
        """The effective parameters of the selected algorithm (defaults filled in), camelCase keys."""
        block = {
            Algorithm.EPSILON_GREEDY: self.epsilon_greedy or EpsilonGreedyParams(),
            Algorithm.UCB1: self.ucb1 or UCB1Params(),
            Algorithm.THOMPSON_SAMPLING: self.thompson_sampling or ThompsonSamplingParams(),
            Algorithm.SOFTMAX: self.softmax or SoftmaxParams(),
            Algorithm.LIN_UCB: self.lin_ucb or LinUCBParams(),
            Algorithm.LINEAR_THOMPSON: self.linear_thompson or LinearThompsonParams(),
        }[Algorithm(self.type)]
        return block.model_dump(by_alias=True, mode="json")

    @model_validator(mode="after")
    def _rules(self) -> Self:
        blocks = {
            "epsilonGreedy": self.epsilon_greedy,
            "ucb1": self.ucb1,
            "thompsonSampling": self.thompson_sampling,
            "softmax": self.softmax,
            "linUCB": self.lin_ucb,
            "linearThompson": self.linear_thompson,
        }
        enforce(*((_only_for(f, a), blocks[f] is None or self.type == a) for f, a in _PARAM_FIELDS.items()))
        return self


_DIMENSION_MATCHES = cel(
    "!has(self.features) || !has(self.dimension) || size(self.features) == self.dimension",
    "dimension must equal the number of features when both are set",
    field_path=".dimension",
)
_FEATURES_OR_DIMENSION = cel("has(self.features) || has(self.dimension)", "set features (names) or dimension")


class ContextSpec(ApiModel):
    """The context features of a contextual policy: a request sends them by name (an object) or in order (a list)."""

    model_config = validated(_DIMENSION_MATCHES, _FEATURES_OR_DIMENSION)

    features: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=128, pattern=FEATURE_NAME_PATTERN)]] | None,
        Field(
            description="Feature names, in the order of the feature vector.",
            max_length=MAX_FEATURES,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ] = None
    dimension: Annotated[
        int | None,
        Field(description="Length of the feature vector (derived from features when omitted).", ge=1, le=MAX_FEATURES),
    ] = None
    intercept: Annotated[bool, Field(description="Append a constant 1 feature so every arm learns a bias term.")] = True

    @model_validator(mode="after")
    def _rules(self) -> Self:
        enforce(
            (
                _DIMENSION_MATCHES,
                self.features is None or self.dimension is None or len(self.features) == self.dimension,
            ),
            (_FEATURES_OR_DIMENSION, self.features is not None or self.dimension is not None),
        )
        return self

    @property
    def size(self) -> int:
        """Length of the vector a request sends."""
        return len(self.features) if self.features is not None else int(self.dimension or 0)


class RewardSpec(ApiModel):
    """How rewards look and when a decision stops waiting for one."""

    type: Annotated[RewardType, Field(description="Binary (0 or 1) or Continuous (any finite number).")] = (
        RewardType.BINARY
    )
    attribution_window_seconds: Annotated[
        int,
        Field(description="How long after a decision its reward is accepted.", ge=1, le=30 * 24 * 3600),
    ] = 3600
    default_reward: Annotated[
        float | None,
        Field(description="Reward learned for a decision that got none inside the window; unset: learn nothing."),
    ] = None


class ExplorationSpec(ApiModel):
    """Exploration guarantees that keep the decision log usable for off-policy evaluation."""

    min_probability: Annotated[
        float,
        Field(
            description=(
                "Floor on every eligible arm's probability (0 disables). A probability vector that already gives "
                "every eligible arm at least this much is used unchanged; otherwise the arms below the floor are "
                "raised to it and the mass they need is taken from the other arms in proportion to their "
                "probabilities (repeated while that pushes another arm below the floor): "
                "p'(a) = max(floor, c * p(a)) with the one c <= 1 that makes the vector sum to 1."
            ),
            ge=0,
            le=1,
        ),
    ] = 0.0


class ScoringExploration(StrEnum):
    SOFTMAX = "Softmax"
    EPSILON_GREEDY = "EpsilonGreedy"
    INVERSE_GAP = "InverseGap"


class ScoreSoftmaxParams(ApiModel):
    """P(arm) proportional to exp(score / temperature)."""

    temperature: Annotated[float, Field(description="Temperature; lower exploits more.", gt=0, le=1000)] = 0.1


class InverseGapParams(ApiModel):
    """Inverse gap weighting (SquareCB): p(a) = 1 / (K + gamma * (best score - score(a))) for every arm but the best,
    which gets the rest."""

    gamma: Annotated[
        float, Field(description="Learning rate gamma; larger exploits more (0: uniform).", ge=0, le=1e9)
    ] = 100.0


_SCORE_PARAMS = {
    "softmax": ScoringExploration.SOFTMAX,
    "epsilonGreedy": ScoringExploration.EPSILON_GREEDY,
    "inverseGap": ScoringExploration.INVERSE_GAP,
}


class ScoreExplorationSpec(ApiModel):
    """How the policy explores around the model's scores (only the block matching `type` may be set)."""

    model_config = validated(*(_only_for(f, a) for f, a in _SCORE_PARAMS.items()))

    type: Annotated[ScoringExploration, Field(description="Softmax, EpsilonGreedy or InverseGap.")] = (
        ScoringExploration.SOFTMAX
    )
    softmax: Annotated[ScoreSoftmaxParams | None, Field(description="Parameters of Softmax.")] = None
    epsilon_greedy: Annotated[EpsilonGreedyParams | None, Field(description="Parameters of EpsilonGreedy.")] = None
    inverse_gap: Annotated[InverseGapParams | None, Field(description="Parameters of InverseGap.")] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        blocks = {"softmax": self.softmax, "epsilonGreedy": self.epsilon_greedy, "inverseGap": self.inverse_gap}
        enforce(*((_only_for(f, a), blocks[f] is None or self.type == a) for f, a in _SCORE_PARAMS.items()))
        return self


_LABEL_OR_VERSION = cel(
    "!(has(self.label) && has(self.version))", "set label or version, not both", field_path=".version"
)


class ModelTarget(ApiModel):
    """Which version of the ModelDeployment's model scores: one named by a TF Serving version label, or a version."""

    model_config = validated(_LABEL_OR_VERSION)

    label: Annotated[
        str | None,
        Field(
            description="A TF Serving version label (default: stable).", min_length=1, max_length=63, pattern=DNS_LABEL
        ),
    ] = None
    version: Annotated[int | None, Field(description="A model version number.", ge=1)] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        enforce((_LABEL_OR_VERSION, self.label is None or self.version is None))
        return self


DEFAULT_SCORING_LABEL = "stable"


class ScoringSpec(ApiModel):
    """Model-scored exploration: a ModelDeployment scores the arms and the policy explores around its scores.

    One TF Serving Predict per decision, inputs `context` [1, d_context] and `arms` [1, eligible arms, d_arm] (float32),
    output `scores` [1, eligible arms] (docs/decisionpolicy.md, "Model-scored decisions")."""

    model_deployment_ref: Annotated[LocalObjectReference, Field(description="The ModelDeployment that scores arms.")]
    target: Annotated[
        ModelTarget | None, Field(description="The model version that scores (default: the label stable).")
    ] = None
    signature_name: Annotated[
        str, Field(description="The SavedModel signature to call.", min_length=1, max_length=256)
    ] = "serving_default"
    timeout_milliseconds: Annotated[
        int, Field(description="How long a decision waits for the model.", ge=1, le=10_000)
    ] = 50
    fallback: Annotated[
        ScoringFallback,
        Field(description="What serves when the model errs or times out: the policy's own estimates, or Uniform."),
    ] = ScoringFallback.POLICY
    exploration: Annotated[
        ScoreExplorationSpec, Field(description="Exploration over the scores (default: Softmax).")
    ] = ScoreExplorationSpec()

    @property
    def label(self) -> str | None:
        """The version label to ask for (None when a version number is set)."""
        if self.target is not None and self.target.version is not None:
            return None
        return (self.target.label if self.target is not None else None) or DEFAULT_SCORING_LABEL

    @property
    def version(self) -> int | None:
        return self.target.version if self.target is not None else None


class ServingSpec(ApiModel):
    """The runtime pods."""

    replicas: Annotated[int, Field(description="Number of runtime pods.", ge=0, le=100)] = 1
    image: Annotated[str | None, Field(description="Override of the runtime image.", min_length=1)] = None
    resources: Annotated[ResourceRequirements | None, Field(description="Runtime container resources.")] = None


class PersistenceSpec(ApiModel):
    """The volume that holds embedded state (decision log, rewards, learned statistics)."""

    enabled: Annotated[
        bool, Field(description="Keep state on a PersistentVolumeClaim; false uses an emptyDir (lost with the pod).")
    ] = True
    size: Annotated[str, Field(description="Volume size.", pattern=r"^[0-9]+(Ki|Mi|Gi|Ti)$")] = "1Gi"
    storage_class_name: Annotated[str | None, Field(description="StorageClass of the claim.")] = None


class SecretKeyRef(ApiModel):
    """A key of a Secret in the same namespace."""

    name: Annotated[str, Field(description="Secret name.", min_length=1, max_length=253)]
    key: Annotated[str, Field(description="Key in the Secret.", min_length=1, max_length=253)]


class RedisSpec(ApiModel):
    """A Redis server shared by all replicas."""

    url: Annotated[
        str | None,
        Field(description="redis:// URL (without password).", pattern=r"^rediss?://", max_length=2048),
    ] = None
    url_secret_ref: Annotated[
        SecretKeyRef | None, Field(description="Secret key holding the redis:// URL (use for passwords).")
    ] = None
    key_prefix: Annotated[
        str | None, Field(description="Key prefix; defaults to croupier:<namespace>:<name>.", max_length=256)
    ] = None


_REDIS_NEEDS_URL = cel(
    "self.backend != 'Redis' || (has(self.redis) && (has(self.redis.url) || has(self.redis.urlSecretRef)))",
    "backend Redis needs redis.url or redis.urlSecretRef",
    field_path=".redis",
)


class StateSpec(ApiModel):
    """Where learned state and the decision log live."""

    model_config = validated(_REDIS_NEEDS_URL)

    backend: Annotated[
        StateBackend,
        Field(description="Embedded (SQLite on the pod's volume, one replica) or Redis (shared by replicas)."),
    ] = StateBackend.EMBEDDED
    persistence: Annotated[PersistenceSpec, Field(description="Volume for Embedded state.")] = PersistenceSpec()
    redis: Annotated[RedisSpec | None, Field(description="Redis connection for backend Redis.")] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        redis = self.redis
        enforce(
            (
                _REDIS_NEEDS_URL,
                self.backend != StateBackend.REDIS
                or (redis is not None and (redis.url is not None or redis.url_secret_ref is not None)),
            )
        )
        return self


class AuthMode(StrEnum):
    BEARER_TOKEN = "BearerToken"
    DISABLED = "Disabled"


class AuthScope(StrEnum):
    """What a token may call. Every data-plane route declares one (`croupier.runtime.http.routes`); health, readiness,
    metrics and the OpenAPI document need none."""

    DECIDE = "decide"
    """Ask for decisions: /v1/decide, /v1/rank, /v1/assign."""
    REWARDS = "rewards"
    """Report what happened: /v1/rewards, /v1/outcomes, /v1/exposures."""
    ADMIN = "admin"
    """Read the runtime's statistics (/v1/stats); the operator's probe needs a token with this scope."""


SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"


class AuthToken(ApiModel):
    """One key of the auth Secret and the scopes its tokens grant."""

    key: Annotated[
        str,
        Field(
            description="Key in the Secret. Its value holds one or more tokens, one a line: to rotate without "
            "downtime, add the new token on a line of its own, move the clients, then remove the old line.",
            min_length=1,
            max_length=253,
            pattern=SECRET_KEY_PATTERN,
        ),
    ]
    scopes: Annotated[
        list[AuthScope],
        Field(
            description="Scopes the tokens of this key grant: decide, rewards, admin.",
            min_length=1,
            max_length=3,
            json_schema_extra={"x-kubernetes-list-type": "set"},
        ),
    ]


DEFAULT_AUTH_TOKENS = (
    AuthToken(key="decide", scopes=[AuthScope.DECIDE]),
    AuthToken(key="rewards", scopes=[AuthScope.REWARDS]),
    AuthToken(key="admin", scopes=[AuthScope.ADMIN]),
)

_AUTH_NEEDS_ADMIN = cel(
    "self.mode == 'Disabled' || !has(self.tokens) || self.tokens.exists(t, 'admin' in t.scopes)",
    "with mode BearerToken one token key needs the admin scope (the operator reads /v1/stats with it)",
    field_path=".tokens",
)


class AuthSpec(ApiModel):
    """Bearer-token authentication of the runtime's API (health, readiness and metrics stay open)."""

    model_config = validated(_AUTH_NEEDS_ADMIN)

    mode: Annotated[
        AuthMode, Field(description="BearerToken (the default) or Disabled (anyone who reaches the pod may call).")
    ] = AuthMode.BEARER_TOKEN
    secret_name: Annotated[
        str | None,
        Field(
            description="Secret holding the tokens, mounted read-only into the runtime pods (default: <name>-auth). "
            "The runtime re-reads it when the kubelet updates the volume: rotating tokens restarts nothing.",
            min_length=1,
            max_length=253,
            pattern=DNS_SUBDOMAIN,
        ),
    ] = None
    tokens: Annotated[
        list[AuthToken],
        Field(
            description="The Secret's keys and their scopes (default: keys decide, rewards and admin, one scope each).",
            min_length=1,
            max_length=32,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"]},
        ),
    ] = list(DEFAULT_AUTH_TOKENS)

    @model_validator(mode="after")
    def _rules(self) -> Self:
        keys = [t.key for t in self.tokens]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"tokens: duplicate keys {duplicates}")
        enforce(
            (
                _AUTH_NEEDS_ADMIN,
                self.mode == AuthMode.DISABLED or any(AuthScope.ADMIN in t.scopes for t in self.tokens),
            )
        )
        return self

    @property
    def enabled(self) -> bool:
        return self.mode == AuthMode.BEARER_TOKEN

    def secret_for(self, policy_name: str) -> str:
        return self.secret_name or f"{policy_name}-auth"

    def grants(self) -> dict[str, frozenset[str]]:
        """Secret key -> the scopes its tokens grant."""
        return {t.key: frozenset(str(s) for s in t.scopes) for t in self.tokens}


class NetworkPolicySpec(CommonNetworkPolicySpec):
    """The NetworkPolicy the operator renders for the runtime pods: ingress only from the listed peers, the operator
    and the monitoring namespaces."""

    ingress: Annotated[
        list[NetworkPeer],
        Field(
            description="Who may call the decision API. The operator's pods (label app.kubernetes.io/name: "
            "croupier-operator) in the operator's own namespace are always allowed, for the stats probe, and so are "
            "the Experiment runtimes of the policy's namespace (label app.kubernetes.io/name: croupier-experiment), "
            "which call the policies their variants target. Default: the pods of the policy's own namespace.",
            max_length=32,
        ),
    ] = [NetworkPeer(pod_selector=LabelSelector())]


_SPEC_RULES = [
    cel(
        "!(self.algorithm.type in ['LinUCB', 'LinearThompson']) || has(self.context)",
        "contextual algorithms (LinUCB, LinearThompson) need spec.context",
        field_path=".context",
    ),
    cel(
        "!has(self.exploration) || self.exploration.minProbability * double(size(self.arms)) <= 1.0",
        "exploration.minProbability times the number of arms must not exceed 1",
        field_path=".exploration.minProbability",
    ),
    cel(
        "!has(self.serving) || self.serving.replicas <= 1 || (has(self.state) && self.state.backend == 'Redis')",
        "more than one replica needs state.backend Redis (embedded state is per pod and would never merge)",
        field_path=".serving.replicas",
    ),
    cel(
        "!has(self.reward) || self.reward.type != 'Binary' || "
        "self.arms.all(a, !has(a.prior) || (a.prior.mean >= 0.0 && a.prior.mean <= 1.0))",
        "with Binary rewards every arm's prior.mean must be in [0, 1]",
        field_path=".arms",
    ),
    cel(
        "!has(self.reward) || self.reward.type != 'Binary' || !has(self.reward.defaultReward) || "
        "self.reward.defaultReward == 0.0 || self.reward.defaultReward == 1.0",
        "with Binary rewards reward.defaultReward must be 0 or 1",
        field_path=".reward.defaultReward",
    ),
    cel(
        "!(self.algorithm.type == 'ThompsonSampling' && (!has(self.algorithm.thompsonSampling) || "
        "self.algorithm.thompsonSampling.likelihood == 'Bernoulli')) || "
        "(has(self.reward) && self.reward.type == 'Binary') || !has(self.reward)",
        "ThompsonSampling with the Bernoulli likelihood needs Binary rewards (use likelihood Gaussian)",
        field_path=".algorithm.thompsonSampling",
    ),
    cel(
        "has(self.scoring) || self.arms.all(a, !has(a.features))",
        "arms[].features apply only with spec.scoring (the model reads them)",
        field_path=".arms",
    ),
    cel(
        "self.arms.all(a, has(a.features) == has(self.arms[0].features) && (!has(a.features) || "
        "(size(a.features) == size(self.arms[0].features) && a.features.all(k, k in self.arms[0].features))))",
        "every arm must name the same features",
        field_path=".arms",
    ),
    cel(
        "!has(self.scoring) || has(self.context) || self.arms.exists(a, has(a.features))",
        "spec.scoring needs spec.context or arms[].features: the model needs something to score",
        field_path=".scoring",
    ),
]


class DecisionPolicySpec(ApiModel):
    """Desired state of a DecisionPolicy: the arms, the algorithm, and how it is served."""

    model_config = validated(*_SPEC_RULES)

    arms: Annotated[
        list[Arm],
        Field(
            description="The arms (actions) to choose from; names are unique.",
            min_length=1,
            max_length=MAX_ARMS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ]
    algorithm: Annotated[AlgorithmSpec, Field(description="The bandit algorithm and its parameters.")]
    context: Annotated[ContextSpec | None, Field(description="Context features (contextual algorithms).")] = None
    reward: Annotated[RewardSpec, Field(description="Reward type and attribution.")] = RewardSpec()
    exploration: Annotated[ExplorationSpec, Field(description="Exploration guarantees.")] = ExplorationSpec()
    scoring: Annotated[
        ScoringSpec | None, Field(description="Optional model-scored exploration over a ModelDeployment.")
    ] = None
    serving: Annotated[ServingSpec, Field(description="Runtime pods.")] = ServingSpec()
    state: Annotated[StateSpec, Field(description="State backend and persistence.")] = StateSpec()
    paused: Annotated[
        bool, Field(description="Serve decisions from the current state but stop learning (rewards are still logged).")
    ] = False
    auth: Annotated[AuthSpec, Field(description="Authentication of the runtime's API (on unless mode Disabled).")] = (
        AuthSpec()
    )
    network_policy: Annotated[
        NetworkPolicySpec, Field(description="Who may reach the runtime pods (a NetworkPolicy per policy).")
    ] = NetworkPolicySpec()

    @model_validator(mode="after")
    def _rules(self) -> Self:
        names = self.arm_names
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"arms: duplicate arm names {duplicates}")
        contextual, floor, replicas, priors, default_reward, bernoulli, arm_features, same_features, scored = (
            _SPEC_RULES
        )
        first = set(self.arms[0].features or ()) if self.arms[0].features is not None else None
        binary = self.reward.type == RewardType.BINARY
        thompson = self.algorithm.thompson_sampling
        enforce(
            (contextual, self.algorithm.type not in CONTEXTUAL_ALGORITHMS or self.context is not None),
            (floor, self.exploration.min_probability * len(self.arms) <= 1.0),
            (replicas, self.serving.replicas <= 1 or self.state.backend == StateBackend.REDIS),
            (priors, not binary or all(a.prior is None or 0.0 <= a.prior.mean <= 1.0 for a in self.arms)),
            (default_reward, not binary or self.reward.default_reward in (None, 0.0, 1.0)),
            (
                bernoulli,
                not (
                    self.algorithm.type == Algorithm.THOMPSON_SAMPLING
                    and (thompson is None or thompson.likelihood == Likelihood.BERNOULLI)
                )
                or binary,
            ),
            (arm_features, self.scoring is not None or all(a.features is None for a in self.arms)),
            (
                same_features,
                all(
                    (a.features is None) == (first is None) and (a.features is None or set(a.features) == first)
                    for a in self.arms
                ),
            ),
            (scored, self.scoring is None or self.context is not None or any(a.features for a in self.arms)),
        )
        return self

    @property
    def arm_names(self) -> list[str]:
        return [a.name for a in self.arms]

    @property
    def arm_feature_names(self) -> list[str]:
        """The arms' feature names in the order the model receives them (sorted; empty without arm features)."""
        return sorted(self.arms[0].features or ())


class Reason(StrEnum):
    """Condition reasons the operator writes on a DecisionPolicy (CamelCase, stable: tools and alerts match on them).

    A child that cannot be applied uses the reasons every kind shares (``croupier.api.common.ChildReason``).
    """

    AVAILABLE = "Available"
    PAUSED = "Paused"
    ROLLOUT_COMPLETE = "RolloutComplete"
    AS_EXPECTED = "AsExpected"
    ROLLOUT_IN_PROGRESS = "RolloutInProgress"
    ROLLOUT_STALLED = "RolloutStalled"
    STALE_GENERATION = "StaleGeneration"
    RUNTIME_UNREACHABLE = "RuntimeUnreachable"
    SCALED_TO_ZERO = "ScaledToZero"
    INVALID_NAME = "InvalidName"
    INVALID_SPEC = "InvalidSpec"
    MODEL_DEPLOYMENT_NOT_FOUND = "ModelDeploymentNotFound"
    """Degraded: spec.scoring names a ModelDeployment that does not exist; every decision falls back."""
    MODEL_NOT_READY = "ModelNotReady"
    """Degraded: the scoring ModelDeployment is not Ready (or has no endpoint yet); decisions may fall back."""
    SCORING_FALLBACKS = "ScoringFallbacks"
    """Degraded: more than half of the decisions since the runtime started fell back (model errors or timeouts)."""


class ScoringStatus(ApiModel):
    """How the model of a model-scored policy is reached and how often the fallback served."""

    model_deployment: Annotated[str, Field(description="The ModelDeployment named by spec.scoring.")]
    model_name: Annotated[str | None, Field(description="Its model (spec.model.name), as the runtime asks it.")] = None
    address: Annotated[
        str | None, Field(description="TF Serving's gRPC address rendered into the runtime's config.")
    ] = None
    model_version: Annotated[
        int | None, Field(description="The model version of the runtime's last scored decision.")
    ] = None
    decisions: Annotated[int | None, Field(description="Decisions since the runtime started.", ge=0)] = None
    fallbacks: Annotated[
        dict[str, int] | None, Field(description="Decisions the fallback served since the start, by reason.")
    ] = None
    fallback_rate: Annotated[
        float | None, Field(description="Share of decisions the fallback served since the start.", ge=0, le=1)
    ] = None


class ArmStatus(ApiModel):
    """Live statistics of one arm, as served by the runtime."""

    name: Annotated[str, Field(description="Arm name.", min_length=1, max_length=63)]
    pulls: Annotated[int, Field(description="Decisions that chose this arm.", ge=0)] = 0
    rewards: Annotated[int, Field(description="Rewards joined to those decisions.", ge=0)] = 0
    reward_sum: Annotated[float, Field(description="Sum of the joined rewards.")] = 0.0
    mean: Annotated[float | None, Field(description="Mean reward (unset before the first reward).")] = None
    probability: Annotated[
        float | None, Field(description="Current probability of choosing this arm (non-contextual policies).")
    ] = None


class DecisionTotals(ApiModel):
    """Totals over all arms."""

    decisions: Annotated[int, Field(description="Decisions served.", ge=0)] = 0
    rewards: Annotated[int, Field(description="Rewards accepted.", ge=0)] = 0
    default_rewards: Annotated[
        int, Field(description="Decisions that got the default reward after the attribution window.", ge=0)
    ] = 0


class DecisionPolicyStatus(ApiModel):
    """Observed state of a DecisionPolicy, written by the operator only."""

    observed_generation: Annotated[
        int | None, Field(description="The .metadata.generation the status was computed for.", ge=0)
    ] = None
    conditions: Conditions = None
    endpoint: Annotated[str | None, Field(description="In-cluster URL of the decision API.")] = None
    replicas: Annotated[int | None, Field(description="Runtime pods desired.", ge=0)] = None
    ready_replicas: Annotated[int | None, Field(description="Runtime pods ready.", ge=0)] = None
    served_generation: Annotated[
        int | None, Field(description="The policy generation the runtime reports it serves.", ge=0)
    ] = None
    arms: Annotated[
        list[ArmStatus] | None,
        Field(
            description="Per-arm statistics from the runtime.",
            max_length=MAX_ARMS,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ] = None
    totals: Annotated[DecisionTotals | None, Field(description="Totals over all arms.")] = None
    best_arm: Annotated[str | None, Field(description="Arm with the highest mean reward so far.")] = None
    arm_count: Annotated[int | None, Field(description="Number of arms in the served spec.", ge=0)] = None
    last_probe_time: Annotated[
        str | None, Field(description="When the runtime's statistics were last read (RFC 3339).")
    ] = None
    scoring: Annotated[
        ScoringStatus | None, Field(description="Model-scored policies: the model and the fallback rate.")
    ] = None


PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Algorithm", "type": "string", "jsonPath": ".spec.algorithm.type"},
    {"name": "Arms", "type": "integer", "jsonPath": ".status.armCount"},
    {"name": "Replicas", "type": "string", "jsonPath": ".status.readyReplicas"},
    {"name": "Decisions", "type": "integer", "jsonPath": ".status.totals.decisions"},
    {"name": "Best", "type": "string", "jsonPath": ".status.bestArm"},
    {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason', "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
