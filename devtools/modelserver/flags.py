"""The command line, with TF Serving's own flag names and defaults (tensorflow_serving/model_servers/main.cc).

Flags take ``--name=value`` or ``--name value``; booleans also take a bare ``--name``. A flag TF Serving has and this
server does not implement, or any other unknown flag, fails with a message naming it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from croupier.modelserver.config import (
    BatchingParameters,
    ConfigError,
    ServerConfig,
    load_server_config,
    parse_batching_parameters,
    prometheus_path,
    single_model_config,
)

# TF Serving flags that change behaviour this server does not reproduce: refused rather than silently ignored.
NOT_IMPLEMENTED = {
    "grpc_socket_path",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "rest_api_num_threads",
    "enable_model_warmup",
    "tensorflow_session_parallelism",
    "tensorflow_intra_op_parallelism",
    "tensorflow_inter_op_parallelism",
    "ssl_config_file",
    "platform_config_file",
    "per_process_gpu_memory_fraction",
    "saved_model_tags",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "use_tflite_model",
    "prefer_tflite_model",
    "enable_cors_support",
    "remove_unused_fields_from_bundle_metagraph",
    "num_load_threads",
    "num_unload_threads",
    "flush_filesystem_caches",
    "allow_version_labels",
}


class FlagError(ValueError):
    pass


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlagError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="croupier-modelserver",
        description="A local stand-in for tensorflow_model_server over real SavedModels (development and tests).",
        allow_abbrev=False,
    )
    p.add_argument("--port", type=int, default=8500, help="gRPC port (TF Serving's default 8500)")
    p.add_argument("--rest_api_port", type=int, default=0, help="REST port; 0 disables REST (TF Serving's default)")
    p.add_argument("--rest_api_timeout_in_ms", type=int, default=30000, help="REST request timeout")
    p.add_argument("--model_config_file", default="", help="ModelServerConfig in text format")
    p.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=int,
        default=0,
        help="re-read --model_config_file this often (0: never)",
    )
    p.add_argument("--model_name", default="default", help="single-model mode: the model's name")
    p.add_argument("--model_base_path", default="", help="single-model mode: the folder of version folders")
    p.add_argument(
        "--file_system_poll_wait_seconds", type=int, default=1, help="rescan version folders this often (0: never)"
    )
    p.add_argument("--monitoring_config_file", default="", help="MonitoringConfig in text format (Prometheus)")
    p.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--batching_parameters_file", default="", help="BatchingParameters in text format")
    p.add_argument(
        "--max_num_load_retries", type=int, default=5, help="retries of a failed load, the version staying LOADING"
    )
    p.add_argument(
        "--load_retry_interval_micros", type=int, default=60_000_000, help="wait between load retries (default 1 min)"
    )
    p.add_argument("--allow_version_labels_for_unavailable_models", type=_bool, nargs="?", const=True, default=False)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (not a TF Serving flag; it binds 0.0.0.0)")
    p.add_argument(
        "--dev_load_delay_ms",
        type=int,
        default=0,
        help="hold each version in LOADING this long before loading it (not a TF Serving flag; for tests)",
    )
    return p


@dataclass(frozen=True)
class Settings:
    host: str
    grpc_port: int
    rest_port: int
    rest_timeout_seconds: float
    config: ServerConfig
    config_file: Path | None
    config_poll_seconds: int
    file_system_poll_seconds: int
    prometheus_path: str | None
    batching: BatchingParameters | None
    allow_labels_for_unavailable: bool
    load_delay_seconds: float
    max_load_retries: int
    load_retry_interval_seconds: float


def parse(argv: list[str]) -> Settings:
    """Parse and validate the command line; FlagError names the problem."""
    for arg in argv:
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0]
            if name in NOT_IMPLEMENTED:
                raise FlagError(f"--{name} is a TF Serving flag this development server does not implement")
    args = parser().parse_args(argv)
    for name in ("port", "rest_api_port"):
        value = getattr(args, name)
        if not 0 <= value <= 65535:
            raise FlagError(f"--{name}={value} is not a port number")
    if args.port == 0:
        raise FlagError("--port=0: the gRPC port must be set")
    if args.rest_api_port == args.port:
        raise FlagError(f"--rest_api_port={args.rest_api_port} must differ from --port")
    if args.rest_api_timeout_in_ms <= 0:
        raise FlagError(f"--rest_api_timeout_in_ms={args.rest_api_timeout_in_ms} must be positive")
    if args.model_config_file_poll_wait_seconds < 0 or args.file_system_poll_wait_seconds < 0:
        raise FlagError("poll intervals must be non-negative")
    if args.max_num_load_retries < 0:
        raise FlagError(f"--max_num_load_retries={args.max_num_load_retries} must be non-negative")
    if args.dev_load_delay_ms < 0:
        raise FlagError(f"--dev_load_delay_ms={args.dev_load_delay_ms} must be non-negative")
    try:
        if args.model_config_file:
            if args.model_base_path:
                raise FlagError("--model_config_file and --model_base_path are mutually exclusive")
            config_file: Path | None = Path(args.model_config_file)
            config = load_server_config(Path(args.model_config_file))
        elif args.model_base_path:
            config_file = None
            config = single_model_config(args.model_name, args.model_base_path)
        else:
            raise FlagError(
                "Both server config file and model base path are empty: set --model_config_file or --model_base_path"
            )
        metrics_path = prometheus_path(Path(args.monitoring_config_file)) if args.monitoring_config_file else None
        batching = None
        if args.batching_parameters_file and not args.enable_batching:
            raise FlagError(
                "server_options.batching_parameters_file is set without setting server_options.enable_batching to true."
            )
        if args.enable_batching:
            if args.batching_parameters_file:
                batching = parse_batching_parameters(Path(args.batching_parameters_file))
            else:
                batching = BatchingParameters(1000, 0, 100_000_000, 4, (), False, 1000, False)
    except ConfigError as error:
        raise FlagError(str(error)) from error
    if args.model_config_file_poll_wait_seconds and config_file is None:
        raise FlagError("--model_config_file_poll_wait_seconds needs --model_config_file")
    if metrics_path is not None and args.rest_api_port == 0:
        raise FlagError("--monitoring_config_file enables Prometheus, which is served on --rest_api_port: set it")
    return Settings(
        host=args.host,
        grpc_port=args.port,
        rest_port=args.rest_api_port,
        rest_timeout_seconds=args.rest_api_timeout_in_ms / 1000.0,
        config=config,
        config_file=config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        file_system_poll_seconds=args.file_system_poll_wait_seconds,
        prometheus_path=metrics_path,
        batching=batching,
        allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
        load_delay_seconds=args.dev_load_delay_ms / 1000.0,
        max_load_retries=args.max_num_load_retries,
        load_retry_interval_seconds=max(0, args.load_retry_interval_micros) / 1e6,
    )
