"""Kopf registration of Experiment: the Kind declared on the shared machinery (``croupier.operator.core``).

Children: ConfigMap (the served manifest), PersistentVolumeClaim, Deployment, Service, PodDisruptionBudget, rendered
by ``children.render`` from the spec and the stored status fields that change what is served (``model.render_inputs``);
observations by ``observer.ExperimentObserver`` (targets, rollout, the runtime's sums); status (the analysis) by
``status.desired_status``.
"""

from __future__ import annotations

from croupier.api.experiment import ExperimentStatus, Reason
from croupier.operator.core.controller import KindController
from croupier.operator.core.registration import register
from croupier.operator.core.resources import (
    CONFIG_MAP,
    DEPLOYMENT,
    EXPERIMENT,
    NETWORK_POLICY,
    PERSISTENT_VOLUME_CLAIM,
    POD_DISRUPTION_BUDGET,
    SERVICE,
)
from croupier.operator.experiment.children import render
from croupier.operator.experiment.metrics import status_samples
from croupier.operator.experiment.model import ExperimentObject, parse_experiment, render_inputs
from croupier.operator.experiment.observer import ExperimentObserver
from croupier.operator.experiment.status import Observations, desired_status

CONTROLLER: KindController[ExperimentObject, Observations, ExperimentStatus] = KindController(
    resource=EXPERIMENT,
    status_model=ExperimentStatus,
    children=(CONFIG_MAP, PERSISTENT_VOLUME_CLAIM, DEPLOYMENT, SERVICE, POD_DISRUPTION_BUDGET, NETWORK_POLICY),
    parse=parse_experiment,
    render=render,
    observer=ExperimentObserver,
    status=desired_status,
    render_inputs=render_inputs,
    status_metrics=status_samples,
    # Ready and Degraded transitions post Events for every kind; these reasons change while Ready stays True.
    event_reasons={
        Reason.WINNER_FOUND: "Normal",
        Reason.CONCLUDED: "Normal",
        Reason.PAUSED: "Normal",
        Reason.GUARDRAIL_VIOLATED: "Warning",
        Reason.SAMPLE_RATIO_MISMATCH: "Warning",
    },
)

register(CONTROLLER)
