"""The command line takes TF Serving's flag names and refuses what it does not implement."""

from __future__ import annotations

from pathlib import Path

import pytest

from croupier.modelserver.flags import FlagError, parse


def test_tf_serving_flags_and_defaults(tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { name: 'r' base_path: '/m/r' } }")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }")
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 16 }")
    settings = parse(
        [
            "--port=9000", "--rest_api_port", "9001", f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=5", f"--monitoring_config_file={monitoring}",
            "--enable_batching", f"--batching_parameters_file={batching}", "--rest_api_timeout_in_ms=1500",
        ]
    )  # fmt: skip
    assert (settings.grpc_port, settings.rest_port, settings.host) == (9000, 9001, "127.0.0.1")
    assert settings.config_file == config and settings.config_poll_seconds == 5
    assert settings.file_system_poll_seconds == 1
    assert settings.prometheus_path == "/monitoring/prometheus/metrics"
    assert settings.batching is not None and settings.batching.max_batch_size == 16
    assert settings.rest_timeout_seconds == 1.5
    single = parse(["--model_name=ranker", "--model_base_path=/m/ranker", "--enable_batching=false"])
    assert single.grpc_port == 8500 and single.rest_port == 0 and single.batching is None
    assert single.max_load_retries == 5 and single.load_retry_interval_seconds == 60.0  # TF Serving's defaults
    quick = parse(["--model_base_path=/m", "--max_num_load_retries=0", "--load_retry_interval_micros=250000"])
    assert quick.max_load_retries == 0 and quick.load_retry_interval_seconds == 0.25
    assert [m.name for m in single.config.models] == ["ranker"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model_base_path=/m", "--nope"], "unrecognized arguments: --nope"),
        (["--model_base_path=/m", "--enable_model_warmup=true"], "--enable_model_warmup is a TF Serving flag"),
        (["--model_base_path=/m", "--port=0"], "the gRPC port must be set"),
        (["--model_base_path=/m", "--max_num_load_retries=-1"], "must be non-negative"),
        (["--model_base_path=/m", "--port=70000"], "--port=70000 is not a port number"),
        (["--model_base_path=/m", "--rest_api_port=8500"], "must differ from --port"),
        (["--model_base_path=/m", "--enable_batching=maybe"], "expected true or false"),
        (["--model_base_path=/m", "--batching_parameters_file=/b"], "without setting server_options.enable_batching"),
        (["--model_base_path=/m", "--model_config_file_poll_wait_seconds=1"], "needs --model_config_file"),
        (["--model_base_path=/m", "--monitoring_config_file=/nope"], "cannot read the MonitoringConfig /nope"),
        (["--model_base_path=/m", "--port=8500", "--model_config_file=/c"], "mutually exclusive"),
        ([], "Both server config file and model base path are empty"),
    ],
)
def test_bad_command_lines(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message):
        parse(argv)


def test_prometheus_needs_the_rest_port(tmp_path: Path) -> None:
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }")
    with pytest.raises(FlagError, match="served on --rest_api_port"):
        parse(["--model_base_path=/m", f"--monitoring_config_file={monitoring}"])
