"""Where TF Serving finds the model: ``storageUri`` -> the base path it is given, and what the pod needs to read it.

* ``file:///path``: a path in the serving image, or in a volume the cluster mounts there; passed as is.
* ``pvc://claim/path``: the claim mounted read-only at ``PVC_MOUNT``; base path ``PVC_MOUNT/path``.
* ``s3://bucket/path``, ``gs://bucket/path``: passed to TF Serving as they are (it reads both natively), with the
  credentials Secret the spec names: for S3 its keys become environment variables, for GCS its ``key.json`` is mounted
  and named by ``GOOGLE_APPLICATION_CREDENTIALS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from croupier.api.modeldeployment import ModelSpec

PVC_MOUNT = "/mnt/models"
CREDENTIALS_MOUNT = "/var/run/secrets/croupier/storage"
GCS_KEY = "key.json"
MODEL_VOLUME = "model-storage"
CREDENTIALS_VOLUME = "storage-credentials"


@dataclass(frozen=True)
class Storage:
    base_path: str
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    env: list[dict[str, Any]] = field(default_factory=list)
    env_from: list[dict[str, Any]] = field(default_factory=list)


def storage(model: ModelSpec) -> Storage:
    uri = model.storage_uri
    secret = model.credentials_secret_ref.name if model.credentials_secret_ref is not None else None
    if uri.startswith("file://"):
        return Storage(base_path=uri.removeprefix("file://").rstrip("/") or "/")
    if uri.startswith("pvc://"):
        claim, _, path = uri.removeprefix("pvc://").partition("/")
        base = f"{PVC_MOUNT}/{path.strip('/')}".rstrip("/")
        return Storage(
            base_path=base,
            volumes=[{"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            mounts=[{"name": MODEL_VOLUME, "mountPath": PVC_MOUNT, "readOnly": True}],
        )
    base = uri.rstrip("/")
    if secret is None:
        return Storage(base_path=base)
    if uri.startswith("s3://"):
        return Storage(base_path=base, env_from=[{"secretRef": {"name": secret}}])
    return Storage(
        base_path=base,
        volumes=[{"name": CREDENTIALS_VOLUME, "secret": {"secretName": secret}}],
        mounts=[{"name": CREDENTIALS_VOLUME, "mountPath": CREDENTIALS_MOUNT, "readOnly": True}],
        env=[{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{CREDENTIALS_MOUNT}/{GCS_KEY}"}],
    )
