"""Operator settings: environment variables prefixed ``CROUPIER_OPERATOR_`` (pydantic-settings).

Everything a platform engineer may tune lives here; Kopf's own knobs are derived from it in ``startup``.
"""

from __future__ import annotations

import string
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from croupier.api.wire import DEFAULT_PORT
from croupier.templates import directory as templates_directory

FIELD_MANAGER = "croupier-operator"
DOMAIN = "croupier.dev"
OPERATOR_VERSION = "0.1.0"

# Placeholders a runtime URL template may use (see ``runtime_url_template``).
URL_PLACEHOLDERS = frozenset({"name", "namespace", "service"})
# The router's and TF Serving's metrics are read per pod (see ``router_metrics_url_template``).
POD_PLACEHOLDERS = frozenset({"pod", "pod_ip"})


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CROUPIER_OPERATOR_", extra="ignore", frozen=True)

    runtime_image: str = Field(
        f"ghcr.io/croupier-dev/croupier-runtime:{OPERATOR_VERSION}",
        description="Runtime image used when a DecisionPolicy sets no spec.serving.image.",
    )
    runtime_image_pull_policy: str = Field(
        "IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$", description="imagePullPolicy of runtime pods."
    )
    runtime_url_template: str = Field(
        "http://{service}.{namespace}.svc:80",
        description=(
            "Where the operator reads a policy's GET /v1/stats. Placeholders: {name}, {namespace}, {service}. "
            "The default goes through the policy's Service; local runs point it at a runtime process, e.g. "
            "http://127.0.0.1:8080. Only the operator's deployer sets it: a per-object override would let anyone "
            "who can edit a DecisionPolicy aim the operator's HTTP client anywhere (SSRF)."
        ),
    )
    probe_enabled: bool = Field(
        True,
        description="Read the runtime's statistics. When false, Ready means available pods with the current "
        "configuration (the served generation is not verified) and the status carries no per-arm table.",
    )
    probe_timeout_seconds: float = Field(2.0, gt=0, le=30, description="Timeout of one GET /v1/stats.")
    probe_failure_threshold: int = Field(
        2,
        ge=1,
        le=20,
        description="Consecutive failed reads of the runtime's statistics before Degraded/RuntimeUnreachable "
        "(one slow answer on a busy node is not a degradation).",
    )
    resync_interval_seconds: float = Field(
        15.0, ge=1, le=3600, description="How often each policy's health, drift and statistics are checked."
    )
    resync_initial_delay_seconds: float = Field(
        2.0, ge=0, le=600, description="Spreads the first check after start so a restart does not burst."
    )
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Namespaces to watch (comma separated); empty: every namespace."
    )
    pod_namespace: str = Field(
        "croupier-system",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="The namespace the operator's pods run in (the manifests set it from the downward API): runtime "
        "NetworkPolicies admit the operator's stats probe from this namespace only.",
    )
    peering_name: str | None = Field(
        None,
        description="Name of a KopfPeering object to coordinate several operator replicas; unset: standalone "
        "(one replica, no peering writes).",
    )
    peering_clusterwide: bool = Field(True, description="Use a ClusterKopfPeering (true) or a namespaced one.")
    peering_priority: int | None = Field(
        None,
        description="With a peering name: this replica's fixed priority (the highest live one works, the others "
        "stand by). Unset: by seniority, the replica that started first leads (replicas of one Deployment share "
        "their environment, and Kopf pauses every replica when two live ones have the same priority).",
    )
    peering_lifetime_seconds: int = Field(
        60,
        ge=10,
        le=3600,
        description="With a peering name: how long a replica's keep-alive counts; each replica writes one every "
        "lifetime minus 5-10 s. A replica killed without a goodbye is taken over after at most this long.",
    )
    liveness_endpoint: str | None = Field(
        None, description="Kopf's liveness endpoint, e.g. http://0.0.0.0:8080/healthz (the manifests set it)."
    )
    metrics_host: str = Field("127.0.0.1", description="Prometheus metrics listener address (0.0.0.0 in a pod).")
    metrics_port: int = Field(9090, ge=0, le=65535, description="Prometheus metrics port; 0 disables the listener.")
    api_workers: int = Field(
        16, ge=1, le=256, description="Concurrent connections of the operator's own Kubernetes API client."
    )
    watch_server_timeout_seconds: int = Field(
        300, ge=10, le=3600, description="Server-side timeout of each watch request (the API server ends it)."
    )
    watch_client_timeout_seconds: int = Field(
        330, ge=10, le=3900, description="Client-side timeout of each watch request (a stuck watch is restarted)."
    )
    templates_dir: Path = Field(
        default_factory=templates_directory, description="Where the child manifests' Jinja2 templates are."
    )
    log_format: LogFormat = Field(LogFormat.AUTO, description="auto (JSON unless a terminal), json or console.")
    log_level: str = Field("info", pattern=r"(?i)^(debug|info|warning|error)$", description="debug, info, ...")
    runtime_port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="Container port of the runtime.")
    model_server_address_template: str = Field(
        "{service}.{namespace}.svc:8500",
        description=(
            "Where the operator calls TF Serving's GetModelStatus (gRPC host:port) for a ModelDeployment's server. "
            "Placeholders: {name} (the ModelDeployment), {namespace}, {service} (the server's Service). The default "
            "goes through the Service; local runs point it at a model server process, e.g. 127.0.0.1:8500. Only the "
            "operator's deployer sets it (as runtime_url_template)."
        ),
    )
    model_metrics_url_template: str = Field(
        "http://{pod_ip}:8501/monitoring/prometheus/metrics",
        description=(
            "Where the canary analysis (RuntimeStats) scrapes TF Serving's Prometheus endpoint of a ModelDeployment's "
            "server in routing mode GatewayAPI: once per ready pod of the version's server, summed. Placeholders as "
            "router_metrics_url_template. Local runs point it at model server processes, e.g. "
            "http://127.0.0.1:9000/{namespace}/{pod}/monitoring/prometheus/metrics behind a small dispatcher, or "
            "http://127.0.0.1:8501/monitoring/prometheus/metrics for one process. A template without {pod} or "
            "{pod_ip} is one address: exact with one pod per server only (with more, the interval is "
            "InsufficientData)."
        ),
    )
    router_metrics_url_template: str = Field(
        "http://{pod_ip}:8501/metrics",
        description=(
            "Where the canary analysis (RuntimeStats) scrapes the model router's per-version counters of a "
            "ModelDeployment in routing mode VersionLabels: once per ready router pod, summed. Placeholders as "
            "model_server_address_template plus {pod} (the pod's name) and {pod_ip} (its IP). Local runs point it "
            "at router processes, e.g. http://127.0.0.1:9000/{namespace}/{pod}/metrics behind a small dispatcher. "
            "A template without {pod} or {pod_ip} is one address: exact with one router pod only (with more, the "
            "interval is InsufficientData)."
        ),
    )
    model_status_timeout_seconds: float = Field(2.0, gt=0, le=30, description="Timeout of one GetModelStatus call.")
    model_config_poll_seconds: int = Field(
        10,
        ge=1,
        le=600,
        description="TF Serving's --model_config_file_poll_wait_seconds: how often the servers re-read their model "
        "config (version and label changes take this long, plus the kubelet's ConfigMap sync, to reach them).",
    )

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator(
        "runtime_url_template",
        "model_server_address_template",
    )
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        return _check_placeholders(value, URL_PLACEHOLDERS)

    @field_validator("router_metrics_url_template", "model_metrics_url_template")
    @classmethod
    def _known_pod_placeholders(cls, value: str) -> str:
        return _check_placeholders(value, URL_PLACEHOLDERS | POD_PLACEHOLDERS)

    def runtime_url(self, *, name: str, namespace: str, service: str) -> str:
        return self.runtime_url_template.format(name=name, namespace=namespace, service=service).rstrip("/")

    def model_server_address(self, *, name: str, namespace: str, service: str) -> str:
        return self.model_server_address_template.format(name=name, namespace=namespace, service=service)

    def model_metrics_url(self, *, name: str, namespace: str, service: str, pod: str = "", pod_ip: str = "") -> str:
        return self.metrics_url(
            self.model_metrics_url_template, name=name, namespace=namespace, service=service, pod=pod, pod_ip=pod_ip
        )

    @property
    def model_metrics_per_pod(self) -> bool:
        """The TF Serving metrics template names a pod: one URL per server pod (otherwise one URL for them all)."""
        return names_pod(self.model_metrics_url_template)

    @property
    def router_metrics_per_pod(self) -> bool:
        """The router metrics template names a pod: one URL per router pod (otherwise one URL for them all)."""
        return names_pod(self.router_metrics_url_template)

    def router_metrics_url(self, *, name: str, namespace: str, service: str, pod: str = "", pod_ip: str = "") -> str:
        return self.metrics_url(
            self.router_metrics_url_template, name=name, namespace=namespace, service=service, pod=pod, pod_ip=pod_ip
        )

    @staticmethod
    def metrics_url(template: str, *, name: str, namespace: str, service: str, pod: str = "", pod_ip: str = "") -> str:
        """A metrics URL template (router's or TF Serving's) filled in for one pod (or none: a Service address)."""
        host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip  # an IPv6 address in a URL
        return template.format(name=name, namespace=namespace, service=service, pod=pod, pod_ip=host)


def names_pod(template: str) -> bool:
    """A metrics URL template that names a pod ({pod} or {pod_ip}): one URL per pod."""
    return bool(_placeholders(template) & POD_PLACEHOLDERS)


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _check_placeholders(template: str, allowed: frozenset[str]) -> str:
    unknown = _placeholders(template) - allowed
    if unknown:
        raise ValueError(f"unknown placeholders {sorted(unknown)}; allowed: {sorted(allowed)}")
    return template


ENV_PREFIX = "CROUPIER_OPERATOR_"


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def default_of(field: str) -> str:
    """A setting's default as an environment value would spell it."""
    info = OperatorSettings.model_fields[field]
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(empty)"
    return str(value.value if isinstance(value, StrEnum) else value)


def settings_help() -> str:
    """Every setting with its environment variable, default and description (``croupier-operator --help``)."""
    lines = ["Settings (environment variable, default):"]
    for name, info in OperatorSettings.model_fields.items():
        lines.append(f"  {env_name(name)}  [default: {default_of(name)}]")
        if info.description:
            lines.append(f"      {info.description}")
    return "\n".join(lines)
