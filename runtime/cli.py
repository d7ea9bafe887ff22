"""`croupier-runtime`: serve one DecisionPolicy or one Experiment, or export a policy's decision log.

    croupier-runtime --policy examples/banner.yaml --port 8080 --state-dir ./state
    croupier-runtime --experiment examples/experiment-abn.yaml --policy-url homepage-banner=http://127.0.0.1:8081
    croupier-runtime export --policy examples/banner.yaml --state-dir ./state --output decisions.jsonl
    croupier-runtime export --policy examples/banner.yaml --state-dir ./state --format parquet --output log.parquet
    croupier-runtime router --upstream-rest http://127.0.0.1:8511 --upstream-grpc 127.0.0.1:8510 \
        --routing-file routing.yaml --rest-port 8501 --grpc-port 8500

Flags override `CROUPIER_RUNTIME_*` (the router: `CROUPIER_ROUTER_*`) environment variables (see
`croupier.runtime.settings`).
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.logs import configure_logging
from croupier.runtime.policy_file import load_policy
from croupier.runtime.settings import RuntimeSettings

if TYPE_CHECKING:
    from croupier.runtime.assembly import Runtime
    from croupier.runtime.experiments.assembly import ExperimentRuntime


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="croupier-runtime", description="Serve one DecisionPolicy (or one Experiment) over HTTP."
    )
    parser.add_argument("--policy", type=Path, help="DecisionPolicy manifest (YAML), as applied with kubectl.")
    parser.add_argument("--experiment", type=Path, help="Experiment manifest (YAML) to serve instead of a policy.")
    parser.add_argument(
        "--policy-url",
        action="append",
        dest="policy_urls",
        metavar="NAME=URL",
        help="Experiments: the runtime of the DecisionPolicy NAME (repeatable; default: its Service in the cluster).",
    )
    parser.add_argument("--host", help="Listen address (default: 127.0.0.1, or 0.0.0.0 inside a pod).")
    parser.add_argument("--port", type=int, help="Listen port (default 8080; 0 picks a free port).")
    parser.add_argument("--state-dir", type=Path, help="Directory of the SQLite decision log.")
    parser.add_argument("--redis-url", help="Redis URL for state.backend Redis (overrides the spec).")
    parser.add_argument("--auth-dir", type=Path, help="Mounted auth Secret: require bearer tokens (spec.auth).")
    parser.add_argument("--log-level", help="debug, info, warning, error.")
    parser.add_argument("--seed", type=int, help="Seed of the decision RNG (reproducible runs).")
    return parser


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="croupier-runtime export",
        description="Write the decision log, joined with rewards, as JSON lines or Parquet.",
    )
    parser.add_argument("--policy", type=Path, help="The DecisionPolicy manifest (finds the log in --state-dir).")
    parser.add_argument("--state-dir", type=Path, help="Directory of the SQLite decision log.")
    parser.add_argument("--database", type=Path, help="The SQLite file itself (instead of --policy/--state-dir).")
    parser.add_argument("--output", type=Path, help="Output file (default: standard output; required for Parquet).")
    parser.add_argument(
        "--format", choices=("jsonl", "parquet"), default="jsonl", help="jsonl (default) or parquet (needs pyarrow)."
    )
    parser.add_argument("--after", help="Only decisions with an id after this one (incremental export).")
    return parser


def _settings(args: argparse.Namespace) -> RuntimeSettings:
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "policy": args.policy,
            "experiment": getattr(args, "experiment", None),
            "policy_urls": getattr(args, "policy_urls", None),
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "state_dir": args.state_dir,
            "redis_url": getattr(args, "redis_url", None),
            "auth_dir": getattr(args, "auth_dir", None),
            "log_level": getattr(args, "log_level", None),
            "seed": getattr(args, "seed", None),
        }.items()
        if value is not None
    }
    return RuntimeSettings(**overrides)


def serve(argv: list[str]) -> int:
    args = _serve_parser().parse_args(argv)
    settings = _settings(args)
    configure_logging(settings.log_level, settings.log_format)
    log = structlog.get_logger("croupier.runtime")
    runtime: Runtime | ExperimentRuntime
    try:
        from croupier.runtime.http.app import HttpApp  # noqa: PLC0415 - keep `--help` fast

        if settings.experiment is not None:
            from croupier.runtime.experiments.assembly import ExperimentRuntime  # noqa: PLC0415
            from croupier.runtime.experiments.config import load_experiment  # noqa: PLC0415

            experiment = load_experiment(settings.experiment)
            runtime = ExperimentRuntime(settings, experiment)
            name = experiment.name
        else:
            from croupier.runtime.assembly import Runtime  # noqa: PLC0415

            served = load_policy(settings.policy)
            runtime = Runtime(settings, served)
            name = served.name
        app = HttpApp(runtime, on_started=freeze_start_up_heap)
    except PolicyConfigError as exc:  # ExperimentConfigError too
        log.error("cannot serve the " + ("experiment" if settings.experiment else "policy"), error=str(exc))
        return 2
    import uvicorn  # noqa: PLC0415

    from croupier.runtime.http.server import ConnectionLimits, guarded_protocol  # noqa: PLC0415

    limits = ConnectionLimits(
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
        max_connections=settings.max_connections,
        max_body_bytes=settings.max_body_bytes,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=guarded_protocol(limits),
        ws="none",
        timeout_keep_alive=settings.keep_alive_timeout_seconds,
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        proxy_headers=False,  # the runtime never looks at client addresses: skip the middleware per request
        backlog=4096,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    gc.set_threshold(*GC_THRESHOLDS)
    kind = "experiment" if settings.experiment is not None else "policy"
    log.info("serving", host=settings.host, port=settings.port, state_dir=str(settings.state_dir), **{kind: name})
    server.run()
    return 0 if server.started else 1


def freeze_start_up_heap() -> None:
    """Move everything allocated up to the end of start-up (modules, the policy, restored state) out of the
    collector's reach: it lives as long as the process, and full collections under load then scan only what requests
    allocate (no 10-100 ms pauses in the decide path's p99). Here, not in `Runtime.start`: a process that embeds a
    runtime (a test run, a benchmark) keeps its own heap collectable."""
    gc.collect()
    gc.freeze()


# Young-generation collections every 20k container allocations instead of 700: a decide request allocates a few
# dozen short-lived containers, almost none in cycles, and each young collection also walks the request objects in
# flight. The start-up heap is frozen out of the collector by `freeze_start_up_heap`.
GC_THRESHOLDS = (20_000, 20, 10)


def export(argv: list[str]) -> int:
    from croupier.runtime.store.export import ExportError, export_jsonl, export_parquet  # noqa: PLC0415
    from croupier.runtime.store.sqlite import database_path  # noqa: PLC0415

    args = _export_parser().parse_args(argv)
    if args.database is not None:
        database = args.database
    else:
        settings = _settings(args)
        try:
            served = load_policy(settings.policy)
        except PolicyConfigError as exc:
            print(f"croupier-runtime export: {exc}", file=sys.stderr)
            return 2
        database = database_path(settings.state_dir, served.namespace, served.name)
    if not database.exists():
        print(f"croupier-runtime export: no decision log at {database}", file=sys.stderr)
        return 2
    if args.format == "parquet" and args.output is None:
        print("croupier-runtime export: --format parquet needs --output (a file)", file=sys.stderr)
        return 2
    try:
        if args.format == "parquet":
            count = export_parquet(database, args.output, after=args.after)
        elif args.output is None:
            count = export_jsonl(database, sys.stdout.buffer, after=args.after)
        else:
            with args.output.open("wb") as out:
                count = export_jsonl(database, out, after=args.after)
    except ExportError as exc:
        print(f"croupier-runtime export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {count} decisions from {database}", file=sys.stderr)
    return 0


def _router_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="croupier-runtime router",
        description="Serve TF Serving's REST and gRPC API in front of TF Serving, splitting stable/canary by weight.",
    )
    parser.add_argument("--host", help="Listen address (default: 127.0.0.1, or 0.0.0.0 inside a pod).")
    parser.add_argument("--rest-port", type=int, help="REST port (default 8501; 0 picks a free port).")
    parser.add_argument("--grpc-port", type=int, help="gRPC port (default 8500; 0 picks a free port).")
    parser.add_argument("--upstream-rest", help="The model server's REST base URL, e.g. http://127.0.0.1:8511.")
    parser.add_argument("--upstream-grpc", help="The model server's gRPC address, e.g. 127.0.0.1:8510.")
    parser.add_argument("--routing-file", type=Path, help="The routing table (YAML or JSON), read every second.")
    parser.add_argument("--poll-seconds", type=float, help="How often the routing file is read (default 1).")
    parser.add_argument("--log-level", help="debug, info, warning, error.")
    return parser


def router(argv: list[str]) -> int:
    import asyncio  # noqa: PLC0415

    from pydantic import ValidationError  # noqa: PLC0415

    from croupier.runtime.metrics import get_metrics  # noqa: PLC0415
    from croupier.runtime.modelrouter.server import serve as serve_router  # noqa: PLC0415
    from croupier.runtime.settings import RouterSettings  # noqa: PLC0415

    args = _router_parser().parse_args(argv)
    overrides = {key: value for key, value in vars(args).items() if value is not None}
    try:
        settings = RouterSettings(**overrides)
    except ValidationError as error:
        print(f"croupier-runtime router: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve_router(settings, get_metrics()))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        return export(argv[1:])
    if argv[:1] == ["router"]:
        return router(argv[1:])
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
