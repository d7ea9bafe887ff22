"""What an Experiment observes beyond its children: its Deployment's rollout, its targets (DecisionPolicies; and
ModelDeployment versions, served only through the model router of routing mode VersionLabels), and the runtime's
sufficient statistics (GET /v1/stats), once its pods are rolled out."""

from __future__ import annotations

import asyncio
import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from croupier.api.common import ConditionStatus, ConditionType
from croupier.api.decisionpolicy import KIND as POLICY_KIND
from croupier.api.decisionpolicy import AuthScope, DecisionPolicySpec
from croupier.api.experiment import ExperimentState, PolicyToken
from croupier.api.modeldeployment import KIND as MODEL_KIND
from croupier.api.modeldeployment import ModelVersionState, RoutingMode
from croupier.api.wire import STATS_PATH, ExperimentStatsResponse
from croupier.operator.core.controller import Services, Snapshot
from croupier.operator.core.kube import KubeError
from croupier.operator.core.resources import DEPLOYMENT, SECRET
from croupier.operator.decisionpolicy.probe import AUTH_SECRET_LABEL, admin_token
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.experiment.children import CONFIG_HASH_ANNOTATION, child_names
from croupier.operator.experiment.model import ExperimentObject, served_state, unobserved_targets
from croupier.operator.experiment.status import Observations
from croupier.stats import COMPUTING_MODULES

PROBE_RETRY_SECONDS = 2.0
PAUSED = ExperimentState.PAUSED


@dataclass
class ModelTargets:
    missing: list[str] = field(default_factory=list)
    unready: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    """`target_keys` of the versions that can serve now."""


def _ready(policy: dict[str, object]) -> bool:
    status = policy.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for condition in conditions or ():
        if isinstance(condition, dict) and condition.get("type") == ConditionType.READY:
            return bool(condition.get("status") == ConditionStatus.TRUE)
    return False


def _model_target_problem(deployment: dict[str, Any], version: int) -> str | None:
    """Why a ModelDeployment cannot serve a version route now (None: it can). "unsupported": GatewayAPI mode, where
    no model router runs; else a reason the version is not AVAILABLE there."""
    spec = deployment.get("spec")
    routing = spec.get("routing") if isinstance(spec, dict) else None
    mode = routing.get("mode") if isinstance(routing, dict) else None
    if (mode or RoutingMode.VERSION_LABELS) != RoutingMode.VERSION_LABELS:
        return "unsupported"
    status = deployment.get("status")
    rows = status.get("versions") if isinstance(status, dict) else None
    for row in rows or ():
        if isinstance(row, dict) and row.get("version") == version:
            state = row.get("state")
            return None if state == ModelVersionState.AVAILABLE else f"version {version} is {state}"
    declared = (
        {part.get("version") for part in (spec.get("stable"), spec.get("canary")) if isinstance(part, dict)}
        if isinstance(spec, dict)
        else set()
    )
    if version in declared:
        return f"version {version} has no state in its status yet"
    return f"version {version} is not loaded (neither its stable nor its canary version)"


async def load_statistics() -> None:
    """Import what the first analysis computes with (numpy, scipy.special; about 0.6 s and 35 MiB of RSS) in a thread,
    so that the event loop goes on serving every other object meanwhile; a no-op once they are loaded. The operator
    does not import them at start: an operator without Experiments never pays for them."""
    missing = [name for name in COMPUTING_MODULES if name not in sys.modules]
    if missing:
        await asyncio.to_thread(lambda: [importlib.import_module(name) for name in missing])


def _ready_targets(
    experiment: ExperimentObject, policy_problems: tuple[str, ...], models: ModelTargets
) -> tuple[str, ...]:
    """`target_keys` of the targets observed Ready in this pass (what ``status.readyTargets`` records)."""
    policies = {v.decision_policy_ref.name for v in experiment.spec.variants if v.decision_policy_ref}
    ready = [f"{POLICY_KIND}/{name}" for name in policies if name not in policy_problems] + models.ready
    return tuple(sorted(set(ready)))


class ExperimentObserver:
    """Remembers consecutive failed reads per experiment (one slow answer is not yet a degradation)."""

    def __init__(self, services: Services) -> None:
        self.settings = services.settings
        self.http = services.http
        self.kube = services.kube
        self.failures: dict[str, int] = {}

    def forget(self, uid: str) -> None:
        self.failures.pop(uid, None)

    def recheck_after(self, uid: str) -> float | None:
        failures = self.failures.get(uid, 0)
        return PROBE_RETRY_SECONDS * failures if failures else None

    async def _targets(
        self, experiment: ExperimentObject
    ) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, dict[str, Any]]]:
        missing: list[str] = []
        unready: list[str] = []
        found: dict[str, dict[str, Any]] = {}
        if self.kube is None:
            return (), (), found
        for name in sorted({v.decision_policy_ref.name for v in experiment.spec.variants if v.decision_policy_ref}):
            policy = await self.kube.get(POLICY_KIND, experiment.namespace, name)
            if policy is None:
                missing.append(name)
                continue
            found[name] = policy
            if not _ready(policy):
                unready.append(name)
        return tuple(missing), tuple(unready), found

    async def _policy_tokens(
        self, namespace: str, policies: dict[str, dict[str, Any]]
    ) -> tuple[tuple[PolicyToken, ...], tuple[str, ...]]:
        """Where each DecisionPolicy target's decide token is mounted from, derived from the policy's spec.auth as
        observed (Secret name, first key with the decide scope), and why a target gets none. The Secret is read by
        name (never listed) and mounted only when it carries the runtime-auth label: without that opt-in, whoever may
        write a DecisionPolicy could name any Secret of the namespace and have it mounted into the experiment's
        runtime. A policy with auth disabled needs no token."""
        tokens: list[PolicyToken] = []
        problems: list[str] = []
        for name, body in sorted(policies.items()):
            try:
                auth = DecisionPolicySpec.model_validate(body.get("spec") or {}).auth
            except ValidationError:
                continue  # the policy's own status says what is wrong with it
            if not auth.enabled:
                continue
            secret_name = auth.secret_for(name)
            key = next((t.key for t in auth.tokens if AuthScope.DECIDE in t.scopes), None)
            where = f"Secret {namespace}/{secret_name} of DecisionPolicy {name}"
            if key is None:
                problems.append(f"DecisionPolicy {name} has no spec.auth.tokens key with the decide scope")
                continue
            try:
                secret = await self.kube.get(SECRET.kind, namespace, secret_name) if self.kube is not None else None
            except KubeError as error:
                problems.append(f"reading {where} failed: HTTP {error.status} {error.reason}")
                continue
            if secret is None:
                problems.append(f"{where} does not exist")
            elif (secret.get("metadata", {}).get("labels") or {}).get(AUTH_SECRET_LABEL) != "true":
                problems.append(f"{where} lacks the label {AUTH_SECRET_LABEL}=true, so it is not mounted")
            else:
                tokens.append(PolicyToken(policy=name, secret_name=secret_name, key=key))
        return tuple(tokens), tuple(problems)

    async def _model_targets(self, experiment: ExperimentObject) -> ModelTargets:
        """Each variant's ModelDeployment version target: missing, not servable yet, or unsupported (GatewayAPI)."""
        found = ModelTargets()
        if self.kube is None:
            return found
        for variant in experiment.spec.variants:
            ref = variant.model_deployment_ref
            if ref is None:
                continue
            deployment = await self.kube.get(MODEL_KIND, experiment.namespace, ref.name)
            if deployment is None:
                found.missing.append(ref.name)
                continue
            problem = _model_target_problem(deployment, ref.version)
            if problem is None:
                found.ready.append(f"{MODEL_KIND}/{ref.name}/{ref.version}")
            elif problem == "unsupported":
                found.unsupported.append(variant.name)
            elif problem is not None:
                found.unready.append(f"{ref.name} ({problem})")
        return found

    async def _stats(self, url: str, experiment: ExperimentObject) -> tuple[ExperimentStatsResponse | None, str | None]:
        target = f"{url}{STATS_PATH}"
        headers: dict[str, str] = {}
        token_problem = ""
        if experiment.spec.auth.enabled:  # the admin token, read per probe as for a DecisionPolicy; never logged
            token, token_problem = await admin_token(
                self.kube, experiment.namespace, experiment.spec.auth, experiment.name
            )
            if token is not None:
                headers["authorization"] = f"Bearer {token}"
        try:
            response = await self.http.get(target, headers=headers)
        except httpx.HTTPError as error:
            return None, f"GET {target} failed: {type(error).__name__}: {error}".rstrip(": ")
        if response.status_code != 200:
            suffix = f" ({token_problem})" if token_problem and response.status_code in (401, 403) else ""
            return None, f"GET {target} answered HTTP {response.status_code}{suffix}"
        try:
            return ExperimentStatsResponse.model_validate_json(response.content), None
        except ValidationError as error:
            return None, f"GET {target} returned an unexpected body: {error.error_count()} errors"

    async def observe(self, snapshot: Snapshot[ExperimentObject]) -> Observations:
        target, experiment = snapshot.target, snapshot.parsed
        names = child_names(target.name)
        live = snapshot.live.get((DEPLOYMENT.kind, names.deployment))
        deployment = DeploymentState.from_object(live, CONFIG_HASH_ANNOTATION) if live is not None else None
        desired = snapshot.desired_child(DEPLOYMENT.kind, names.deployment)
        config_hash = DeploymentState.from_object(desired, CONFIG_HASH_ANNOTATION).config_hash if desired else None
        if experiment is None:
            return Observations(generation=target.generation, spec=None, invalid=snapshot.invalid)
        missing, unready, policies = await self._targets(experiment)
        tokens, token_problems = await self._policy_tokens(target.namespace, policies)
        models = await self._model_targets(experiment)
        ready_targets = _ready_targets(experiment, missing + unready, models) if self.kube is not None else None
        stats, error = None, None
        if (
            snapshot.problem is None
            and self.settings.probe_enabled
            and deployment is not None
            and deployment.rolled_out(config_hash)
        ):
            url = self.settings.runtime_url(name=target.name, namespace=target.namespace, service=names.service)
            stats, error = await self._stats(url, experiment)
            if stats is not None and stats.generation != target.generation:
                error, stats = f"the runtime serves generation {stats.generation}, want {target.generation}", None
            if stats is not None:
                await load_statistics()
            self.failures[target.uid] = 0 if stats is not None else self.failures.get(target.uid, 0) + 1
        return Observations(
            generation=target.generation,
            spec=experiment.spec,
            served_state=served_state(experiment),
            apply_problem=snapshot.problem,
            deployment=deployment,
            config_hash=config_hash,
            unsupported=tuple(models.unsupported),
            missing_targets=missing,
            unready_targets=unready,
            ready_targets=ready_targets,
            awaiting_targets=tuple(unobserved_targets(experiment)) if served_state(experiment) == PAUSED else (),
            missing_models=tuple(models.missing),
            unready_models=tuple(models.unready),
            stats=stats,
            probe_error=error,
            probe_failures=self.failures.get(target.uid, 0),
            probe_failure_threshold=self.settings.probe_failure_threshold,
            policy_tokens=tokens,
            token_problems=token_problems,
        )
