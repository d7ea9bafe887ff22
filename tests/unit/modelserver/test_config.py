"""TF Serving's config files parsed into typed values: ModelServerConfig, MonitoringConfig, BatchingParameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from croupier.modelserver.config import (
    DEFAULT_PROMETHEUS_PATH,
    ConfigError,
    VersionPolicy,
    load_server_config,
    parse_batching_parameters,
    parse_server_config_text,
    prometheus_path,
    single_model_config,
)

CONFIG = """
model_config_list {
  config {
    name: 'ranker'
    base_path: '/models/ranker'
    model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: 1 }
    version_labels { key: 'canary' value: 2 }
  }
  config { name: 'other' base_path: 'file:///models/other' model_version_policy { all {} } }
  config { name: 'third' base_path: '/models/third' model_version_policy { latest { num_versions: 2 } } }
}
"""


def test_model_config_list() -> None:
    config = parse_server_config_text(CONFIG)
    ranker, other, third = config.models
    assert ranker.name == "ranker" and ranker.base_path == Path("/models/ranker")
    assert ranker.policy == VersionPolicy("specific", versions=(1, 2))
    assert ranker.version_labels == {"stable": 1, "canary": 2}
    assert other.base_path == Path("/models/other") and other.policy.kind == "all"
    assert third.policy == VersionPolicy("latest", num_versions=2)
    assert config.model("other") is other and config.model("nope") is None


def test_version_policies_choose_among_the_folders_on_disk() -> None:
    on_disk = [3, 1, 2, 5]
    assert VersionPolicy("latest").aspired(on_disk) == [5]
    assert VersionPolicy("latest", num_versions=2).aspired(on_disk) == [3, 5]
    assert VersionPolicy("all").aspired(on_disk) == [1, 2, 3, 5]
    assert VersionPolicy("specific", versions=(2, 4)).aspired(on_disk) == [2]


def test_single_model_mode_serves_the_latest_version() -> None:
    (model,) = single_model_config("default", "/models/x").models
    assert model.name == "default" and model.policy == VersionPolicy("latest") and model.version_labels == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'a' base_path: '/b' } }",
            "Illegal to list model a multiple times in config list",
        ),
        ("model_config_list { config { base_path: '/a' } }", "a model config has no name"),
        ("model_config_list { config { name: 'a' } }", "model a has no base_path"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' model_platform: 'onnx' } }",
            "model_platform 'onnx' is not supported",
        ),
        ("model_config_list { config { name: 'a' base_path: 'gs://bucket/a' } }", "is not a local path"),
        (
            "model_config_list { config { name: 'a' base_path: '/a' model_version_policy { specific {} } } }",
            "specific version policy lists no versions",
        ),
        (
            "model_config_list { config { name: 'a' base_path: '/a' version_labels { key: 'a b' value: 1 } } }",
            "invalid version label 'a b'",
        ),
        ("custom_model_config {}", "custom_model_config is not supported"),
        ("model_config_list { config { name: 'a' base_path: '/a' nope: 1 } }", "not a valid ModelServerConfig"),
    ],
)
def test_bad_model_configs_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_server_config_text(text)


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the ModelServerConfig"):
        load_server_config(tmp_path / "missing.config")
    broken = tmp_path / "broken.config"
    broken.write_text("model_config_list {")
    with pytest.raises(ConfigError, match=f"{broken}: not a valid ModelServerConfig"):
        load_server_config(broken)


def test_monitoring_config(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.config"
    path.write_text('prometheus_config { enable: true, path: "/metrics/tf" }')
    assert prometheus_path(path) == "/metrics/tf"
    path.write_text("prometheus_config { enable: true }")
    assert prometheus_path(path) == DEFAULT_PROMETHEUS_PATH == "/monitoring/prometheus/metrics"
    path.write_text("prometheus_config { enable: false }")
    assert prometheus_path(path) is None
    path.write_text("prometheus_config { enabled: true }")
    with pytest.raises(ConfigError, match="not a valid MonitoringConfig"):
        prometheus_path(path)


def test_batching_parameters(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 32 } batch_timeout_micros { value: 1000 } num_batch_threads { value: 2 } "
        "max_enqueued_batches { value: 10 } allowed_batch_sizes: 8 allowed_batch_sizes: 32"
    )
    params = parse_batching_parameters(path)
    assert params.max_batch_size == 32 and params.batch_timeout_micros == 1000
    assert params.num_batch_threads == 2 and params.max_enqueued_batches == 10
    assert params.allowed_batch_sizes == (8, 32)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size { value: 0 }", "max_batch_size must be positive"),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 2 allowed_batch_sizes: 8",
            "monotonically increasing",
        ),
        (
            "max_batch_size { value: 8 } allowed_batch_sizes: 4",
            "The last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8",
        ),
        ("max_batch_size: 8", "not a valid BatchingParameters"),
    ],
)
def test_bad_batching_parameters(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "batching.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        parse_batching_parameters(path)
