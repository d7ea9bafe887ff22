"""TF Serving's configuration files, parsed with protobuf's text format into TF Serving's own messages.

``ModelServerConfig`` comes from the stock ``model_server_config_pb2``. The wheel of tensorflow-serving-api does not
ship ``MonitoringConfig`` (tensorflow_serving/config/monitoring_config.proto) nor ``BatchingParameters``
(tensorflow_serving/servables/tensorflow/session_bundle_config.proto); they are declared here with the same package,
names and field numbers, so a file TF Serving accepts parses the same way and a file it rejects is rejected.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class ConfigError(ValueError):
    """A configuration file or flag value that cannot be served; the message names the file and the problem."""


def _extra_messages() -> tuple[Any, Any, Any]:
    """MonitoringConfig, PrometheusConfig and BatchingParameters, built from descriptors in a private pool."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="croupier/modelserver/tf_serving_extra.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )

    def add(message: descriptor_pb2.DescriptorProto, name: str, number: int, kind: int, type_name: str = "") -> None:
        added = message.field.add(name=name, number=number, type=kind, label=f.LABEL_OPTIONAL, json_name=name)
        if type_name:
            added.type_name = type_name

    prometheus = proto.message_type.add(name="PrometheusConfig")
    add(prometheus, "enable", 1, f.TYPE_BOOL)
    add(prometheus, "path", 2, f.TYPE_STRING)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    add(monitoring, "prometheus_config", 1, f.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")
    batching = proto.message_type.add(name="BatchingParameters")
    int64 = ".google.protobuf.Int64Value"
    for name, number in (
        ("max_batch_size", 1),
        ("batch_timeout_micros", 2),
        ("max_enqueued_batches", 3),
        ("num_batch_threads", 4),
        ("max_execution_batch_size", 9),
    ):
        add(batching, name, number, f.TYPE_MESSAGE, int64)
    add(batching, "thread_pool_name", 5, f.TYPE_MESSAGE, ".google.protobuf.StringValue")
    add(batching, "enable_large_batch_splitting", 8, f.TYPE_MESSAGE, ".google.protobuf.BoolValue")
    batching.field.add(
        name="allowed_batch_sizes", number=6, type=f.TYPE_INT64, label=f.LABEL_REPEATED, json_name="allowedBatchSizes"
    )
    add(batching, "pad_variable_length_inputs", 7, f.TYPE_BOOL)
    pool.Add(proto)
    get = message_factory.GetMessageClass
    return (
        get(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")),
        get(pool.FindMessageTypeByName("tensorflow.serving.PrometheusConfig")),
        get(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
    )


MonitoringConfig, PrometheusConfig, BatchingParametersProto = _extra_messages()


def _parse_text(path: Path, message: Any, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read the {what} {path}: {error.strerror or error}") from error
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as error:
        raise ConfigError(f"{path}: not a valid {what} in text format: {error}") from error


@dataclass(frozen=True)
class VersionPolicy:
    """``model_version_policy``: ``latest`` (the newest ``num_versions``), ``all``, or ``specific`` versions."""

    kind: str  # "latest" | "all" | "specific"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def aspired(self, on_disk: list[int]) -> list[int]:
        """The versions to serve among the numeric version folders found on disk (sorted ascending)."""
        present = sorted(set(on_disk))
        if self.kind == "all":
            return present
        if self.kind == "specific":
            return [v for v in present if v in self.versions]
        return present[-self.num_versions :] if self.num_versions > 0 else []


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: Path
    policy: VersionPolicy
    version_labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerConfig:
    """A parsed ``ModelServerConfig``: the models in order. A reload replaces the whole list."""

    models: tuple[ModelConfig, ...]

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)


_LABEL = re.compile(r"^[a-zA-Z0-9_\-]+$")


def server_config_from_proto(config: Any, *, source: str, relative_to: Path | None = None) -> ServerConfig:
    """Validate a ``ModelServerConfig`` message and turn it into typed values (TF Serving's rules)."""
    which = config.WhichOneof("config")
    if which == "custom_model_config":
        raise ConfigError(f"{source}: custom_model_config is not supported; use model_config_list")
    models: list[ModelConfig] = []
    seen: set[str] = set()
    for entry in config.model_config_list.config:
        if not entry.name:
            raise ConfigError(f"{source}: a model config has no name")
        if entry.name in seen:
            raise ConfigError(f"{source}: Illegal to list model {entry.name} multiple times in config list")
        seen.add(entry.name)
        if not entry.base_path:
            raise ConfigError(f"{source}: model {entry.name} has no base_path")
        if entry.model_platform not in ("", "tensorflow"):
            raise ConfigError(
                f"{source}: model {entry.name}: model_platform {entry.model_platform!r} is not supported "
                "(this server loads TensorFlow SavedModels only)"
            )
        base = Path(entry.base_path.removeprefix("file://"))
        if "://" in entry.base_path and not entry.base_path.startswith("file://"):
            raise ConfigError(
                f"{source}: model {entry.name}: base_path {entry.base_path} is not a local path "
                "(this development server reads local folders and file:// only)"
            )
        if not base.is_absolute() and relative_to is not None:
            base = relative_to / base
        policy_kind = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        if policy_kind == "latest":
            num = entry.model_version_policy.latest.num_versions if entry.model_version_policy.HasField("latest") else 1
            policy = VersionPolicy("latest", num_versions=num or 1)
        elif policy_kind == "all":
            policy = VersionPolicy("all")
        else:
            versions = tuple(entry.model_version_policy.specific.versions)
            if not versions:
                raise ConfigError(f"{source}: model {entry.name}: specific version policy lists no versions")
            policy = VersionPolicy("specific", versions=versions)
        labels = dict(entry.version_labels)
        for label in labels:
            if not _LABEL.match(label):
                raise ConfigError(f"{source}: model {entry.name}: invalid version label {label!r}")
        models.append(ModelConfig(entry.name, base, policy, labels))
    return ServerConfig(tuple(models))


def parse_server_config_text(text: str, *, source: str = "<text>") -> ServerConfig:
    try:
        message = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ConfigError(f"{source}: not a valid ModelServerConfig in text format: {error}") from error
    return server_config_from_proto(message, source=source)


def load_server_config(path: Path) -> ServerConfig:
    """Read ``--model_config_file`` (text format ``ModelServerConfig``)."""
    message = _parse_text(path, model_server_config_pb2.ModelServerConfig(), "ModelServerConfig")
    return server_config_from_proto(message, source=str(path))


def single_model_config(name: str, base_path: str) -> ServerConfig:
    """``--model_name``/``--model_base_path``: one model, latest version, no labels (TF Serving's default)."""
    message = model_server_config_pb2.ModelServerConfig()
    entry = message.model_config_list.config.add()
    entry.name = name
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    return server_config_from_proto(message, source="--model_base_path")


def prometheus_path(path: Path) -> str | None:
    """``--monitoring_config_file``: the Prometheus endpoint's path, or None when Prometheus is not enabled."""
    config = _parse_text(path, MonitoringConfig(), "MonitoringConfig")
    if not config.prometheus_config.enable:
        return None
    endpoint = config.prometheus_config.path or DEFAULT_PROMETHEUS_PATH
    if not endpoint.startswith("/"):
        raise ConfigError(f"{path}: prometheus_config.path must start with '/', got {endpoint!r}")
    return str(endpoint)


@dataclass(frozen=True)
class BatchingParameters:
    """``--batching_parameters_file``. Only ``max_batch_size`` changes answers (see docs/modelserver.md)."""

    max_batch_size: int
    batch_timeout_micros: int
    max_enqueued_batches: int
    num_batch_threads: int
    allowed_batch_sizes: tuple[int, ...]
    enable_large_batch_splitting: bool
    max_execution_batch_size: int
    pad_variable_length_inputs: bool


def parse_batching_parameters(path: Path) -> BatchingParameters:
    proto = _parse_text(path, BatchingParametersProto(), "BatchingParameters")
    return batching_parameters_from_proto(proto, source=str(path))


def batching_parameters_from_proto(proto: Any, *, source: str) -> BatchingParameters:
    def value(name: str, default: int) -> int:
        return int(getattr(proto, name).value) if proto.HasField(name) else default

    # TF Serving's defaults (session_bundle_config.proto, batching_util.h).
    params = BatchingParameters(
        max_batch_size=value("max_batch_size", 1000),
        batch_timeout_micros=value("batch_timeout_micros", 0),
        max_enqueued_batches=value("max_enqueued_batches", 100_000_000),
        num_batch_threads=value("num_batch_threads", 4),
        allowed_batch_sizes=tuple(int(s) for s in proto.allowed_batch_sizes),
        enable_large_batch_splitting=bool(proto.enable_large_batch_splitting.value)
        if proto.HasField("enable_large_batch_splitting")
        else False,
        max_execution_batch_size=value("max_execution_batch_size", value("max_batch_size", 1000)),
        pad_variable_length_inputs=bool(proto.pad_variable_length_inputs),
    )
    for name in ("max_batch_size", "num_batch_threads", "max_enqueued_batches", "max_execution_batch_size"):
        if getattr(params, name) <= 0:
            raise ConfigError(f"{source}: {name} must be positive, got {getattr(params, name)}")
    if params.batch_timeout_micros < 0:
        raise ConfigError(f"{source}: batch_timeout_micros must be non-negative, got {params.batch_timeout_micros}")
    sizes = params.allowed_batch_sizes
    if sizes:
        if any(s <= 0 for s in sizes):
            raise ConfigError(f"{source}: allowed_batch_sizes entries must be positive")
        if any(b <= a for a, b in itertools.pairwise(sizes)):
            raise ConfigError(f"{source}: allowed_batch_sizes entries must be monotonically increasing")
        expected = params.max_execution_batch_size if params.enable_large_batch_splitting else params.max_batch_size
        if sizes[-1] != expected:
            raise ConfigError(
                f"{source}: The last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{sizes[-1]}; expected {expected}"
            )
    return params
