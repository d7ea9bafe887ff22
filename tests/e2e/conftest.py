"""A kind cluster with Croupier deployed from this checkout, built through the Makefile's own targets.

``make e2e`` runs these tests. They need Docker (a reachable daemon), kind and kubectl; without them every test is
skipped with a message naming what is missing (CI runs that path). The cluster is ``$KIND_CLUSTER`` (``croupier``):
an existing one is reused and kept, one created here is deleted afterwards (``CROUPIER_KEEP_CLUSTER=1`` keeps it).
Either way the images are rebuilt from this checkout, loaded (``make kind-load``) and deployed (``make deploy``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from .kind import CLUSTER, KindCluster, make, missing_tools

KEEP_ENV = "CROUPIER_KEEP_CLUSTER"


@pytest.fixture(scope="session")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindCluster]:
    if missing := missing_tools():
        pytest.skip(f"e2e needs {', '.join(missing)}; install Docker and kind, then `make e2e`")
    clusters = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True, check=True).stdout.split()
    created = CLUSTER not in clusters
    if created:
        make("kind-up")
    try:
        kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
        exported = subprocess.run(
            ["kind", "get", "kubeconfig", "--name", CLUSTER], capture_output=True, text=True, check=True
        )
        kubeconfig.write_text(exported.stdout)
        make("kind-load", "deploy", kubeconfig=kubeconfig)
        yield KindCluster(CLUSTER, kubeconfig)
    finally:
        if created and os.environ.get(KEEP_ENV, "") in ("", "0"):
            make("kind-down", timeout=300)
