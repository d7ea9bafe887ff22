"""Kopf registration of ModelDeployment: no children and no observations yet, only a status saying so (reason
``NotImplemented``) until its reconciler lands."""

from __future__ import annotations

from typing import Any

from croupier.api.modeldeployment import ModelDeploymentStatus, Reason
from croupier.operator.core.controller import KindController, Snapshot
from croupier.operator.core.registration import register
from croupier.operator.core.resources import MODEL_DEPLOYMENT
from croupier.operator.core.unimplemented import unreconciled_controller

CONTROLLER: KindController[None, Snapshot[Any], ModelDeploymentStatus] = unreconciled_controller(
    MODEL_DEPLOYMENT, ModelDeploymentStatus, Reason.NOT_IMPLEMENTED
)

register(CONTROLLER)
