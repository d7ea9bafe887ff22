"""The fake Node that kwok keeps Ready and on which the scheduler places every pod."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .flags import KWOK_NODE_ANNOTATION, KWOK_NODE_ANNOTATION_VALUE


@dataclass(frozen=True)
class FakeNode:
    """Capacity is generous so that tests never wait on resources; there is no taint, so pods need no toleration."""

    name: str = "kwok-node-0"
    cpu: str = "32"
    memory: str = "64Gi"
    pods: str = "200"

    def manifest(self, kubelet_version: str | None = None) -> dict[str, Any]:
        """The Node object; ``kubelet_version`` (e.g. the apiserver's) is what ``kubectl get nodes`` shows."""
        capacity = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods, "ephemeral-storage": "200Gi"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {
                    KWOK_NODE_ANNOTATION: KWOK_NODE_ANNOTATION_VALUE,
                    "node.alpha.kubernetes.io/ttl": "0",
                },
                "labels": {
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/role": "agent",
                    "node-role.kubernetes.io/agent": "",
                    "type": "kwok",
                },
            },
            "status": {
                "allocatable": dict(capacity),
                "capacity": dict(capacity),
                # kwok keeps nodeInfo fields that are set and fills the rest with its own version.
                **({"nodeInfo": {"kubeletVersion": kubelet_version}} if kubelet_version else {}),
            },
        }
