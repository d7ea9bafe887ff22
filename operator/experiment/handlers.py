"""Kopf registration of Experiment: no children and no observations yet, only a status saying so."""

from __future__ import annotations

from typing import Any

from croupier.api.experiment import ExperimentStatus
from croupier.operator.core.controller import KindController, NothingToObserve, Snapshot, no_children, spec_not_read
from croupier.operator.core.registration import register
from croupier.operator.core.resources import EXPERIMENT
from croupier.operator.experiment.status import OWNED_STATUS, desired_status

CONTROLLER: KindController[None, Snapshot[Any], ExperimentStatus] = KindController(
    resource=EXPERIMENT,
    status_model=ExperimentStatus,
    parse=spec_not_read,
    render=no_children,
    observer=NothingToObserve,
    status=desired_status,
    owned_status=OWNED_STATUS,
)

register(CONTROLLER)
