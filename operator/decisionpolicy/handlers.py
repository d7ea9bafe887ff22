"""Kopf registration of DecisionPolicy: the Kind declared on the shared machinery (``croupier.operator.core``).

Children: ConfigMap, Deployment, Service, PodDisruptionBudget, NetworkPolicy (and a PersistentVolumeClaim for embedded
state on a volume), rendered by ``children.render``; observations by ``observer.RuntimeObserver`` (the runtime's
statistics, read with the auth Secret's admin token); status by ``status.desired_status``.
"""

from __future__ import annotations

from croupier.api.decisionpolicy import DecisionPolicyStatus
from croupier.operator import metrics
from croupier.operator.core.controller import KindController
from croupier.operator.core.registration import register
from croupier.operator.core.resources import (
    CONFIG_MAP,
    DECISION_POLICY,
    DEPLOYMENT,
    NETWORK_POLICY,
    PERSISTENT_VOLUME_CLAIM,
    POD_DISRUPTION_BUDGET,
    SERVICE,
)
from croupier.operator.decisionpolicy.children import render
from croupier.operator.decisionpolicy.model import PolicyObject, parse_policy, render_inputs
from croupier.operator.decisionpolicy.observer import RuntimeObserver
from croupier.operator.decisionpolicy.status import Observations, desired_status

CONTROLLER: KindController[PolicyObject, Observations, DecisionPolicyStatus] = KindController(
    resource=DECISION_POLICY,
    status_model=DecisionPolicyStatus,
    children=(CONFIG_MAP, SERVICE, PERSISTENT_VOLUME_CLAIM, DEPLOYMENT, POD_DISRUPTION_BUDGET, NETWORK_POLICY),
    parse=parse_policy,
    render=render,
    observer=RuntimeObserver,
    status=desired_status,
    ready_gauge=metrics.POLICIES,
    render_inputs=render_inputs,
)

register(CONTROLLER)
