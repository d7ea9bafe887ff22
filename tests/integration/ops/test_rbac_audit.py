"""RBAC audit: the operator's ClusterRoles (config/rbac, and the chart cluster-wide and per namespace) grant exactly
what the code uses, no more and no less.

The used set is derived from the code, not copied from the role:
* every Kind registered with a controller (`operator/<kind>/handlers.py`): Kopf lists and watches it, gets it, and
  patches it (its finalizer and progress annotations, never spec); the status subresource is read and merge-patched;
  a Kind that owns children needs `update` on `<plural>/finalizers` (children carry ownerReferences with
  blockOwnerDeletion, which the API server checks against the owner's finalizers);
* every child kind a controller declares (`operator/core/resources.py` CHILD_KINDS): indexed (list, watch), read (get)
  and server-side applied (patch, and create for a new object);
* a controller that prunes (`prunes_children`, ModelDeployment: a routing mode change): delete on its child kinds;
* `READ_BY_NAME` kinds (the auth Secret of the stats probe): get only;
* `LIST_AND_ANNOTATE` kinds (the model router's pods, annotated after a routing table change): list and patch;
* Kopf itself: Events (core and events.k8s.io, create), CRD discovery and namespaces (get, list, watch); with peering
  on (config/rbac/peering), its peering objects (get, list, watch, patch).
A grant outside that set fails the test (remove it, or show the code that uses it); a use outside the grants fails too.

This keeps kustomize's role, the chart's (both modes) and the declarations above equal. What the operator really
requests is checked by test_rbac_audit_log.py against the API server's audit log (which showed, and now keeps out,
grants no code used: status `get`, Experiments `get`, CRD and namespace `get`, events.k8s.io Events).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from integration.ops.test_chart import _template

from croupier.devcluster.kubectl import Kubectl
from croupier.operator.core.controller import KindController
from croupier.operator.core.resources import LIST_AND_ANNOTATE, READ_BY_NAME, TARGETS_READ_BY_NAME
from croupier.operator.decisionpolicy import handlers as decisionpolicy
from croupier.operator.experiment import handlers as experiment
from croupier.operator.modeldeployment import handlers as modeldeployment

ROOT = Path(__file__).resolve().parents[3]

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

CONTROLLERS: list[KindController[Any, Any, Any]] = [
    decisionpolicy.CONTROLLER,
    modeldeployment.CONTROLLER,
    experiment.CONTROLLER,
]
KOPF_NEEDS: set[Grant] = {
    ("", "events", "create"),
    *(("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")),
    *(("", "namespaces", v) for v in ("list", "watch")),
}
KOPF_PEERING_NEEDS: set[Grant] = {
    ("kopf.dev", plural, verb)
    for plural in ("clusterkopfpeerings", "kopfpeerings")
    for verb in ("get", "list", "watch", "patch")
}


def used_by_the_code() -> set[Grant]:
    used = set(KOPF_NEEDS)
    for controller in CONTROLLERS:
        kind = controller.resource
        used |= {(kind.group, kind.plural, v) for v in ("list", "watch", "patch")}
        used.add((kind.group, f"{kind.plural}/status", "patch"))
        if controller.children:
            used.add((kind.group, f"{kind.plural}/finalizers", "update"))
        for child in controller.children:
            used |= {(child.group, child.plural, v) for v in ("get", "list", "watch", "create", "patch")}
            if controller.prunes_children:
                used.add((child.group, child.plural, "delete"))
    used |= {(r.group, r.plural, "get") for r in (*READ_BY_NAME, *TARGETS_READ_BY_NAME)}
    used |= {(r.group, r.plural, v) for r in LIST_AND_ANNOTATE for v in ("list", "patch")}
    return used


def granted(roles: list[dict[str, Any]]) -> set[Grant]:
    out: set[Grant] = set()
    for role in roles:
        assert role["kind"] == "ClusterRole", role["kind"]
        for rule in role["rules"]:
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule, rule
            out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


def _roles(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in documents if d and d["kind"] in ("ClusterRole", "Role")]


def _report(grants: set[Grant], used: set[Grant]) -> str:
    return f"granted but never used: {sorted(grants - used)}; used but not granted: {sorted(used - grants)}"


def test_the_used_set_covers_every_child_kind() -> None:
    # Sanity of the derivation itself: the DecisionPolicy's children, the Secret it reads, deletes only of the
    # ModelDeployment's child kinds (pruning), pods only listed and annotated.
    used = used_by_the_code()
    assert ("networking.k8s.io", "networkpolicies", "patch") in used
    assert ("", "secrets", "get") in used and ("", "secrets", "list") not in used
    deletes = {(g, r) for g, r, v in used if v == "delete"}
    assert deletes == {(c.group, c.plural) for c in modeldeployment.CONTROLLER.children}
    assert {v for g, r, v in used if (g, r) == ("", "pods")} == {"list", "patch"}
    assert not {g for g in used if g[2] in ("deletecollection", "update") and "/finalizers" not in g[1]}


def test_kustomize_cluster_role_grants_exactly_what_the_code_uses(kubectl: Kubectl) -> None:
    documents = list(yaml.safe_load_all(kubectl("kustomize", str(ROOT / "config" / "rbac")).stdout))
    grants, used = granted(_roles(documents)), used_by_the_code()
    assert grants == used, _report(grants, used)


def test_kustomize_peering_role_grants_exactly_what_kopf_peering_uses(kubectl: Kubectl) -> None:
    documents = list(yaml.safe_load_all(kubectl("kustomize", str(ROOT / "config" / "rbac" / "peering")).stdout))
    grants = granted(_roles(documents))
    assert grants == KOPF_PEERING_NEEDS, _report(grants, KOPF_PEERING_NEEDS)


def test_chart_roles_grant_exactly_what_the_code_uses(helm: Path) -> None:
    used = used_by_the_code()
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}"]):
        grants = granted(_roles(_template(helm, *values)))
        assert grants == used, f"chart {values or 'defaults'}: {_report(grants, used)}"
