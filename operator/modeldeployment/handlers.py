"""Kopf registration of ModelDeployment: the Kind declared on the shared machinery (``croupier.operator.core``).

Children: the server ConfigMap, TF Serving Deployment(s), Services and PodDisruptionBudgets rendered from the spec by
``children.render``; the model config ConfigMaps and the Gateway API route, rendered from the serving plan and applied
by ``observer.ModelObserver`` after each GetModelStatus; status by ``status.desired_status``.
"""

from __future__ import annotations

from typing import Any

import kopf

from croupier.api.modeldeployment import KIND, ModelDeploymentStatus
from croupier.operator.core.controller import KindController
from croupier.operator.core.registration import register
from croupier.operator.core.resources import (
    CONFIG_MAP,
    DEPLOYMENT,
    GRPC_ROUTE,
    HTTP_ROUTE,
    MODEL_DEPLOYMENT,
    NETWORK_POLICY,
    POD_DISRUPTION_BUDGET,
    SERVICE,
)
from croupier.operator.modeldeployment.children import render
from croupier.operator.modeldeployment.metrics import status_samples
from croupier.operator.modeldeployment.model import ModelDeploymentObject, parse_model_deployment
from croupier.operator.modeldeployment.observer import ModelObserver
from croupier.operator.modeldeployment.status import Observations, desired_status, rollout_events

# The status fields this controller computes (the rollout: the canary engine's, through the observer).
OWNED_STATUS = (
    "observedGeneration",
    "conditions",
    "versions",
    "canaryWeight",
    "currentStep",
    "rollout",
    "endpoint",
    "restEndpoint",
)

CONTROLLER: KindController[ModelDeploymentObject, Observations, ModelDeploymentStatus] = KindController(
    resource=MODEL_DEPLOYMENT,
    status_model=ModelDeploymentStatus,
    children=(CONFIG_MAP, SERVICE, DEPLOYMENT, POD_DISRUPTION_BUDGET, NETWORK_POLICY, HTTP_ROUTE, GRPC_ROUTE),
    parse=parse_model_deployment,
    render=render,
    observer=ModelObserver,
    status=desired_status,
    prunes_children=True,  # a routing mode change leaves the other mode's children behind
    owned_status=OWNED_STATUS,
    events=rollout_events,
    status_metrics=status_samples,
)

register(CONTROLLER)


@kopf.on.cleanup()
async def close_model_observer(memo: kopf.Memo, **_: Any) -> None:
    """The observer's gRPC channels and API connections close with the operator."""
    supervisor = getattr(memo, "supervisor", None)
    observer = getattr(supervisor, "observers", {}).get(KIND)
    if isinstance(observer, ModelObserver):
        await observer.close()
