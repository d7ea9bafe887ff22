"""Pod Security Standards `restricted` admits the pods of every ModelDeployment and Experiment the operator renders.

The Deployments come from the Kinds' own pure renders (the same functions the operator applies) over every example
and every test source of the golden tests, so a new routing mode, storage or batching option cannot add a pod that
a restricted namespace rejects. The control (a namespace that does reject a non-compliant pod) is in
test_security.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.devcluster.kubectl import Kubectl
from croupier.operator.experiment.children import render as render_experiment
from croupier.operator.experiment.model import parse_experiment
from croupier.operator.modeldeployment.children import render as render_model_deployment
from croupier.operator.modeldeployment.model import parse_model_deployment
from croupier.operator.settings import OperatorSettings

from .conftest import ROOT
from .test_security import pods_admitted, restrict

UNIT = ROOT / "tests" / "unit" / "operator"
SETTINGS = OperatorSettings()
Render = Callable[[dict[str, Any]], Sequence[dict[str, Any]]]


def _model_deployment(body: dict[str, Any]) -> Sequence[dict[str, Any]]:
    return render_model_deployment(parse_model_deployment(body), SETTINGS)


def _experiment(body: dict[str, Any]) -> Sequence[dict[str, Any]]:
    return render_experiment(parse_experiment(body), SETTINGS)


SOURCES: list[tuple[Path, Render]] = [
    *((p, _model_deployment) for p in sorted((UNIT / "modeldeployment" / "deployments").glob("*.yaml"))),
    *((p, _model_deployment) for p in sorted((ROOT / "examples").glob("modeldeployment*.yaml"))),
    *((p, _experiment) for p in sorted((UNIT / "experiment" / "experiments").glob("*.yaml"))),
    *((p, _experiment) for p in sorted((ROOT / "examples").glob("experiment*.yaml"))),
]


@pytest.mark.parametrize(("source", "render"), SOURCES, ids=[f"{p.parent.name}/{p.name}" for p, _ in SOURCES])
def test_restricted_namespace_admits_every_rendered_pod(
    source: Path, render: Render, kubectl: Kubectl, namespace: str
) -> None:
    restrict(kubectl, namespace)
    body = yaml.safe_load(source.read_text())
    body["metadata"]["namespace"] = namespace
    body["metadata"].setdefault("uid", "00000000-0000-4000-8000-000000000001")
    deployments = [child for child in render(body) if child["kind"] == "Deployment"]
    assert deployments, f"{source.name} renders no Deployment"
    for deployment in deployments:
        deployment["metadata"]["namespace"] = namespace
        deployment["metadata"].pop("ownerReferences", None)  # the owner does not exist here
        deployment["spec"]["replicas"] = 1
        kubectl.apply(json.dumps(deployment))
        labels = deployment["spec"]["selector"]["matchLabels"]
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        (pod,) = pods_admitted(kubectl, namespace, selector, 1)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
