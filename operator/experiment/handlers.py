"""Kopf registration of Experiment: no children and no observations yet, only a status saying so (reason
``NotImplemented``) until its reconciler lands."""

from __future__ import annotations

from typing import Any

from croupier.api.experiment import ExperimentStatus, Reason
from croupier.operator.core.controller import KindController, Snapshot
from croupier.operator.core.registration import register
from croupier.operator.core.resources import EXPERIMENT
from croupier.operator.core.unimplemented import unreconciled_controller

CONTROLLER: KindController[None, Snapshot[Any], ExperimentStatus] = unreconciled_controller(
    EXPERIMENT, ExperimentStatus, Reason.NOT_IMPLEMENTED
)

register(CONTROLLER)
