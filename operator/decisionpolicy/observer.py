"""What a DecisionPolicy observes beyond its children: its Deployment's rollout and the runtime's statistics."""

from __future__ import annotations

from croupier.api.decisionpolicy import Reason
from croupier.operator.core.controller import Services, Snapshot
from croupier.operator.core.kube import KubeError
from croupier.operator.core.resources import DEPLOYMENT, MODEL_DEPLOYMENT
from croupier.operator.decisionpolicy.children import CONFIG_HASH_ANNOTATION, child_names, endpoint
from croupier.operator.decisionpolicy.model import PolicyObject
from croupier.operator.decisionpolicy.probe import ProbeResult, admin_token, probe_stats
from croupier.operator.decisionpolicy.status import DeploymentState, Observations, ScoringModel

PROBE_RETRY_SECONDS = 2.0


class RuntimeObserver:
    """What a DecisionPolicy observes beyond its children: the runtime's statistics, once its pods are rolled out.

    Remembers consecutive failed reads per policy (one slow answer is not yet a degradation).
    """

    def __init__(self, services: Services) -> None:
        self.settings = services.settings
        self.http = services.http
        self.kube = services.kube
        self.failures: dict[str, int] = {}

    def forget(self, uid: str) -> None:
        self.failures.pop(uid, None)

    def recheck_after(self, uid: str) -> float | None:
        """A failed read is retried soon (it only counts once it repeats)."""
        failures = self.failures.get(uid, 0)
        return PROBE_RETRY_SECONDS * failures if failures else None

    async def observe(self, snapshot: Snapshot[PolicyObject]) -> Observations:
        target, policy, invalid = snapshot.target, snapshot.parsed, snapshot.invalid
        names = child_names(target.name)
        deployment_obj = snapshot.live.get((DEPLOYMENT.kind, names.deployment))
        deployment = (
            DeploymentState.from_object(deployment_obj, CONFIG_HASH_ANNOTATION) if deployment_obj is not None else None
        )
        desired = snapshot.desired_child(DEPLOYMENT.kind, names.deployment)
        config_hash = DeploymentState.from_object(desired, CONFIG_HASH_ANNOTATION).config_hash if desired else None
        probe: ProbeResult | None = None
        if (
            policy is not None
            and snapshot.problem is None
            and self.settings.probe_enabled
            and deployment is not None
            and policy.spec.serving.replicas > 0
            and deployment.rolled_out(config_hash)
        ):
            url = self.settings.runtime_url(name=target.name, namespace=target.namespace, service=names.service)
            token, token_problem = None, ""
            if policy.spec.auth.enabled:
                token, token_problem = await admin_token(self.kube, target.namespace, policy.spec.auth, target.name)
            probe = await probe_stats(self.http, url, token=token, token_problem=token_problem)
            self.failures[target.uid] = 0 if probe.ok else self.failures.get(target.uid, 0) + 1
        scoring = None
        if policy is not None and policy.spec.scoring is not None:
            scoring = await self.scoring_model(target.namespace, policy.spec.scoring.model_deployment_ref.name)
        return Observations(
            scoring=scoring,
            generation=target.generation,
            endpoint=endpoint(target.name, target.namespace)
            if invalid is None or invalid.reason != Reason.INVALID_NAME
            else None,
            desired_replicas=policy.spec.serving.replicas if policy is not None else None,
            arm_count=len(policy.spec.arms) if policy is not None else None,
            config_hash=config_hash,
            paused=policy.spec.paused if policy is not None else False,
            invalid=invalid,
            apply_problem=snapshot.problem,
            deployment=deployment,
            probe_enabled=self.settings.probe_enabled,
            probe=probe,
            probe_failures=self.failures.get(target.uid, 0),
            probe_failure_threshold=self.settings.probe_failure_threshold,
        )

    async def scoring_model(self, namespace: str, name: str) -> ScoringModel:
        """The scoring ModelDeployment as the runtime needs it: found, Ready, its gRPC endpoint and model name."""
        if self.kube is None:  # no API client (unit tests of the loop): nothing to look up
            return ScoringModel(name, found=True, ready=False, detail="no API client to read the ModelDeployment")
        try:
            md = await self.kube.get(MODEL_DEPLOYMENT.kind, namespace, name)
        except KubeError as error:
            return ScoringModel(name, found=True, ready=False, detail=f"the ModelDeployment could not be read: {error}")
        if md is None:
            return ScoringModel(name, found=False, ready=False, detail=f"ModelDeployment {name!r} does not exist")
        spec, status = md.get("spec") or {}, md.get("status") or {}
        ready = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), None)
        is_ready = ready is not None and ready.get("status") == "True"
        detail = (
            ""
            if is_ready
            else f"ModelDeployment {name!r} is not Ready"
            + (f" ({ready.get('reason')}: {ready.get('message')})" if ready is not None else "")
        )
        return ScoringModel(
            name,
            found=True,
            ready=is_ready,
            address=status.get("endpoint") or None,
            model_name=(spec.get("model") or {}).get("name") or None,
            detail=detail,
        )
