"""Runtime settings: environment variables prefixed `CROUPIER_RUNTIME_`, overridden by command-line flags."""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RewardSync(StrEnum):
    FULL = "full"
    NORMAL = "normal"


def _default_host() -> str:
    # In a pod the Service must reach the port; anywhere else stay on loopback.
    return "0.0.0.0" if os.environ.get("KUBERNETES_SERVICE_HOST") else "127.0.0.1"


def _default_replica() -> str:
    return os.environ.get("POD_NAME") or socket.gethostname()


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROUPIER_RUNTIME_", extra="ignore")

    policy: Path = Field(Path("/etc/croupier/policy.yaml"), description="The DecisionPolicy manifest to serve.")
    experiment: Path | None = Field(
        None, description="An Experiment manifest to serve instead of a policy (the experiment assignment service)."
    )
    policy_url_template: str = Field(
        "http://{name}.{namespace}.svc:8080",
        description="Experiments: where a DecisionPolicy target's runtime answers ({name}, {namespace} filled in).",
    )
    policy_urls: list[str] = Field(
        default_factory=list, description="Experiments: NAME=URL of DecisionPolicy runtimes, overriding the template."
    )
    policy_token_dir: Path | None = Field(
        None,
        description="Experiments: directory holding one file per DecisionPolicy target (named after it) with its "
        "decide-scope token; sent as Authorization: Bearer, re-read on rotation. Unset or no file: no token.",
    )
    target_timeout_ms: int = Field(
        500, ge=1, le=60_000, description="Experiments: how long a DecisionPolicy target's decide may take."
    )
    host: str = Field(default_factory=_default_host, description="Listen address (0.0.0.0 in a pod, else loopback).")
    port: int = Field(8080, ge=0, le=65535)
    state_dir: Path = Field(Path("/var/lib/croupier"), description="Where the SQLite decision log lives.")
    redis_url: str | None = Field(None, description="Overrides spec.state.redis.url (e.g. from a Secret).")
    redis_key_prefix: str | None = Field(None, description="Overrides spec.state.redis.keyPrefix.")
    auth_dir: Path | None = Field(
        None,
        description="Directory of the mounted auth Secret (one file per key). Set: every data-plane route needs a "
        "bearer token with its scope (spec.auth.tokens). Unset: no authentication (the embedded demo, local runs); "
        "the operator sets it in every pod unless spec.auth.mode is Disabled.",
    )
    replica: str = Field(default_factory=_default_replica, description="This process's name in stats and logs.")

    decision_flush_interval_ms: int = Field(
        50, ge=1, le=5000, description="Upper bound on how long a decision record waits before its commit starts."
    )
    decision_flush_max_records: int = Field(
        4096, ge=1, description="A commit starts early once this many decision records wait."
    )
    max_pending_decisions: int = Field(
        200_000, ge=1000, description="Decisions waiting for the writer beyond this are refused with 503."
    )
    reward_sync: RewardSync = Field(
        RewardSync.FULL,
        description="full: a reward is acknowledged after fsync of the WAL (survives power loss); normal: after the "
        "write to the WAL (survives kill -9 of the process, not of the machine).",
    )
    sweep_interval_seconds: float = Field(1.0, gt=0, le=60, description="How often expired decisions are swept.")
    checkpoint_interval_seconds: float = Field(30.0, gt=0, description="How often learned state is checkpointed.")
    retention_hours: float = Field(
        168.0, gt=0, description="Decision records older than this (and past their window) are deleted."
    )
    redis_sync_interval_ms: int = Field(100, ge=10, le=1000, description="How often Redis totals are pulled.")
    max_body_bytes: int = Field(1 << 20, ge=1024)
    header_timeout_seconds: float = Field(
        5.0, gt=0, le=300, description="A request's headers must arrive within this long of its first byte, else 408."
    )
    body_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="A request's whole body must arrive within this long of its headers, else 408."
    )
    keep_alive_timeout_seconds: int = Field(
        5, ge=1, le=600, description="An idle connection (a new one before its first byte too) is closed after this."
    )
    max_connections: int = Field(
        2048,
        ge=1,
        description="Open connections beyond this evict the one waiting longest for its client (idle or stalled).",
    )
    log_level: str = Field("info")
    log_format: str = Field("auto", description="json, console, or auto (console on a terminal).")
    seed: int | None = Field(None, description="Seed of the decision RNG (tests and benchmarks).")


class RouterSettings(BaseSettings):
    """The model router (`croupier-runtime router`): environment variables prefixed `CROUPIER_ROUTER_`."""

    model_config = SettingsConfigDict(env_prefix="CROUPIER_ROUTER_", extra="ignore")

    host: str = Field(default_factory=_default_host, description="Listen address (0.0.0.0 in a pod, else loopback).")
    rest_port: int = Field(8501, ge=0, le=65535, description="TF Serving's REST API (and /metrics); 0 picks one.")
    grpc_port: int = Field(8500, ge=0, le=65535, description="TF Serving's gRPC API; 0 picks a free port.")
    upstream_rest: str = Field("http://127.0.0.1:8511", description="The model server's REST base URL.")
    upstream_grpc: str = Field("127.0.0.1:8510", description="The model server's gRPC address (host:port).")
    routing_file: Path = Field(
        Path("/etc/croupier/routing/routing.yaml"),
        description="The routing table the operator writes (a mounted ConfigMap key), read again every poll.",
    )
    poll_seconds: float = Field(1.0, gt=0, le=5, description="How often the routing file is read.")
    unit_header: str = Field(
        "x-croupier-unit", min_length=1, description="Header (gRPC metadata key) whose value makes routing sticky."
    )
    upstream_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="Longest wait for the model server (a gRPC caller's shorter deadline wins)."
    )
    max_body_bytes: int = Field(64 << 20, ge=1024, description="REST bodies beyond this are refused (413).")
    log_level: str = Field("info")
    log_format: str = Field("auto", description="json, console, or auto (console on a terminal).")

    @field_validator("upstream_rest")
    @classmethod
    def _upstream_rest_is_usable(cls, url: str) -> str:
        """A URL the REST adapter cannot use stops the router at start (exit 2), not at each request."""
        from croupier.runtime.modelrouter.upstream import Upstream  # noqa: PLC0415

        Upstream(url)
        return url
