"""The generated CRDs in a real kube-apiserver: valid manifests are admitted, invalid ones are rejected by the schema
or a CEL rule with a message naming the field, unknown fields never pass silently under strict validation, defaults
are applied, and `kubectl explain` / `kubectl get` show what the models say.

The cases are shared with the unit tests (tests/unit/api/cases.yaml), so pydantic and admission agree on every one.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from croupier.api.common import GROUP, VERSION
from croupier.devcluster.kubectl import Kubectl
from croupier.generators import crdgen

from ..unit.api.cases import CASES, EXAMPLES, manifest

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
PLURALS = {r.kind: r.plural for r in crdgen.RESOURCES}


def table(text: str) -> list[dict[str, str]]:
    """Rows of `kubectl get` output by column name (columns are sliced at the header's offsets: cells may be empty)."""
    header, *lines = text.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    bounds = [*starts[1:], None]
    return [{n: line[a:b].strip() for n, a, b in zip(names, starts, bounds, strict=True)} for line in lines]


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> Iterator[None]:
    """crds/ installed (server-side apply is idempotent with other tests doing the same) and Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=croupier-tests", "-f", str(CRDS))
    names = [f"crd/{r.plural}.{GROUP}" for r in crdgen.RESOURCES]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    yield


@pytest.fixture
def custom(k8s_api: client.ApiClient, crds: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(k8s_api)


def create(api: client.CustomObjectsApi, namespace: str, doc: dict[str, Any], validation: str = "Strict") -> Any:
    return api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURALS[doc["kind"]], doc, field_validation=validation
    )


def rejection(api: client.CustomObjectsApi, namespace: str, doc: dict[str, Any]) -> str:
    """The API server's message for a manifest it must reject."""
    with pytest.raises(ApiException) as raised:
        create(api, namespace, doc)
    assert raised.value.status in (400, 422), raised.value
    return str(json.loads(raised.value.body)["message"])


def test_generated_crds_are_installed_and_structural(kubectl: Kubectl, crds: None) -> None:
    for resource in crdgen.RESOURCES:
        crd = kubectl.json("get", f"crd/{resource.plural}.{GROUP}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True"
        assert conditions.get("NonStructuralSchema", "False") == "False"
        assert crd["spec"]["names"]["categories"] == ["croupier"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_admitted(kubectl: Kubectl, namespace: str, crds: None, path: Path) -> None:
    out = kubectl("apply", "--validate=strict", "-n", namespace, "-f", str(path)).stdout
    assert "created" in out


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["name"] for c in CASES["valid"]])
def test_valid_case_is_admitted(custom: client.CustomObjectsApi, namespace: str, case: dict[str, Any]) -> None:
    created = create(custom, namespace, manifest(case))
    assert created["metadata"]["uid"]


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["name"] for c in CASES["invalid"]])
def test_invalid_case_is_rejected_naming_the_field(
    custom: client.CustomObjectsApi, namespace: str, case: dict[str, Any]
) -> None:
    message = rejection(custom, namespace, manifest(case))
    assert case["field"] in message, message
    if "message" in case:
        assert case["message"] in message, message


# Each kind's name names Services (`<name>`, `<name>-stable`, `<name>-experiment`, ...): a DNS-1035 label short enough
# for its longest child. The operator checks the same (operator/*/model.py), for objects stored before these rules.
NAME_LIMITS = [
    ("decisionpolicy-thompson.yaml", 63),
    ("modeldeployment-canary.yaml", 63 - len("-canary-models")),
    ("experiment-abn.yaml", 63 - len("-experiment")),
]


@pytest.mark.parametrize(("example", "longest"), NAME_LIMITS)
def test_names_must_be_service_names(
    custom: client.CustomObjectsApi, namespace: str, example: str, longest: int
) -> None:
    # Refuse at admission what the operator could not serve, instead of accepting it and failing later.
    doc = yaml.safe_load((EXAMPLES / example).read_text())
    for name in ("7-banners", "banner.v2", "Banner", "a" * (longest + 1)):
        doc["metadata"]["name"] = name
        assert "metadata.name" in rejection(custom, namespace, doc), name
    doc["metadata"]["name"] = "a" * longest
    assert create(custom, namespace, doc)["metadata"]["name"] == "a" * longest


def test_unknown_field_rejected_when_strict_and_pruned_otherwise(
    custom: client.CustomObjectsApi, kubectl: Kubectl, namespace: str
) -> None:
    doc = manifest({"name": "typo", "base": "modeldeployment-canary.yaml"})
    doc["spec"]["canary"]["wieght"] = 10
    message = rejection(custom, namespace, doc)
    assert 'unknown field "spec.canary.wieght"' in message

    # kubectl asks the server for the same: by default (strict since kubectl 1.27) and with --validate=strict.
    for flags in ([], ["--validate=strict"]):
        result = kubectl("apply", *flags, "-n", namespace, "-f", "-", input=json.dumps(doc), check=False)
        assert result.returncode != 0, flags
        assert 'unknown field "spec.canary.wieght"' in result.stderr, flags

    # Without strict validation the structural schema prunes it: it is never stored, so nothing acts on a typo.
    created = create(custom, namespace, doc, validation="Ignore")
    assert "wieght" not in created["spec"]["canary"]


def test_defaults_are_applied_at_admission(custom: client.CustomObjectsApi, namespace: str) -> None:
    doc = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "minimal"},
        "spec": {
            "model": {"name": "ranker", "storageUri": "file:///models/ranker"},
            "stable": {"version": 1},
            "canary": {"version": 2, "weight": 5, "analysis": {"maxErrorRate": 0.01}},
        },
    }
    spec = create(custom, namespace, doc)["spec"]
    assert spec["routing"] == {"mode": "VersionLabels", "protocol": "GRPC"}
    assert spec["serving"]["image"].startswith("tensorflow/serving:")
    assert spec["canary"]["onFailure"] == "Rollback"
    assert spec["canary"]["analysis"]["source"] == {"type": "RuntimeStats"}
    assert spec["canary"]["analysis"]["minRequests"] == 100


def test_kubectl_explain_shows_the_model_descriptions(kubectl: Kubectl, crds: None) -> None:
    wanted = {
        "modeldeployments.spec.canary.steps": "non-decreasing",
        "experiments.spec.assignment.algorithm": "sha256-v1",
        "decisionpolicies.spec.exploration.minProbability": "Floor on every eligible arm",
        "md.status.versions.state": "GetModelStatus",
    }
    deadline = time.monotonic() + 60
    for path, text in wanted.items():
        while True:  # the aggregated OpenAPI document catches up with a new CRD within seconds
            result = kubectl("explain", path, check=False)
            if result.returncode == 0 and text in result.stdout:
                break
            assert time.monotonic() < deadline, f"kubectl explain {path}:\n{result.stdout}{result.stderr}"
            time.sleep(1)


def test_status_subresource_printer_columns_and_kubectl_wait(
    custom: client.CustomObjectsApi, kubectl: Kubectl, namespace: str
) -> None:
    doc = manifest({"name": "ranker", "base": "modeldeployment-canary.yaml"})
    create(custom, namespace, doc)
    now = "2025-01-01T00:00:00Z"
    status = {
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": now}],
        "versions": [
            {"version": 1, "role": "stable", "state": "AVAILABLE", "weight": 75},
            {"version": 2, "role": "canary", "state": "AVAILABLE", "weight": 25},
        ],
        "canaryWeight": 25,
        "currentStep": 1,
    }
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "modeldeployments", "ranker", {"status": status}
    )
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "md/ranker", "--timeout=10s")
    (row,) = table(kubectl("get", "md", "ranker", "-n", namespace).stdout)
    assert list(row) == ["NAME", "READY", "STABLE", "CANARY", "WEIGHT", "STEP", "AGE"]
    assert [row[c] for c in list(row)[:6]] == ["ranker", "True", "1", "2", "25", "1"]

    # The status schema is enforced too: TF Serving states only, weights within 0-100.
    bad = {"status": {"versions": [{"version": 1, "role": "stable", "state": "READY", "weight": 101}]}}
    with pytest.raises(ApiException) as raised:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "modeldeployments", "ranker", bad)
    message = json.loads(raised.value.body)["message"]
    assert "status.versions[0].state" in message
    assert "status.versions[0].weight" in message


def test_category_lists_every_kind_and_experiment_columns(
    kubectl: Kubectl, k8s_api: client.ApiClient, namespace: str, crds: None
) -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        kubectl("apply", "-n", namespace, "-f", str(path))
    out = kubectl("get", "croupier", "-n", namespace, "-o", "name").stdout.split()
    kinds = {line.split("/")[0] for line in out}
    assert kinds == {f"decisionpolicy.{GROUP}", f"modeldeployment.{GROUP}", f"experiment.{GROUP}"}
    client.CustomObjectsApi(k8s_api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "experiments",
        "checkout-offer",
        {"status": {"split": "control=34,bandit=33,ranker-v2=33", "srmPValue": 0.41, "totalExposures": 3000}},
    )
    (row,) = table(kubectl("get", "exp", "-n", namespace, "-o", "wide").stdout)
    assert list(row) == ["NAME", "READY", "STATE", "VARIANTS", "WINNER", "SRM", "EXPOSURES", "REASON", "AGE"]
    assert row["STATE"] == "Running"
    assert row["VARIANTS"] == "control=34,bandit=33,ranker-v2=33"
    assert (row["READY"], row["WINNER"], row["SRM"], row["EXPOSURES"]) == ("", "", "0.41", "3000")
