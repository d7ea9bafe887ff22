"""observations -> status of an Experiment: not reconciled by this version yet (reason ``NotImplemented``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from croupier.api.experiment import ExperimentStatus, Reason
from croupier.operator.core.controller import Snapshot
from croupier.operator.core.unimplemented import not_implemented_conditions
from croupier.operator.settings import OPERATOR_VERSION

# All this version computes; the rest of the status (written by nothing yet) is left alone.
OWNED_STATUS = ("observedGeneration", "conditions")


def desired_status(observed: Snapshot[Any], current: ExperimentStatus | None, now: datetime) -> ExperimentStatus:
    generation = observed.target.generation
    conditions = not_implemented_conditions(
        "Experiment",
        Reason.NOT_IMPLEMENTED,
        OPERATOR_VERSION,
        current.conditions if current is not None else None,
        generation=generation,
        now=now,
    )
    return ExperimentStatus(observed_generation=generation, conditions=conditions)
