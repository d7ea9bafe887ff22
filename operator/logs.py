"""Logging, configured once per process: structlog for our messages, the same renderer for Kopf's stdlib records.

JSON when stderr is not a terminal (a pod), a readable console format on a terminal; ``log_format`` forces either.
Kopf's per-object records carry a ``k8s_ref``; it becomes ``namespace``/``name`` keys like our bound loggers have.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from croupier.operator.settings import LogFormat

_configured = False


def _kopf_object_ref(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict):
        if ref.get("namespace"):
            event_dict.setdefault("namespace", ref["namespace"])
        if ref.get("name"):
            event_dict.setdefault("name", ref["name"])
    return event_dict


class _QuietPokes(logging.Filter):
    """Kopf logs every successful event handler; the child-event pokes would drown everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith("Handler 'poke_owner_"))


def configure_logging(log_format: LogFormat = LogFormat.AUTO, level: str = "info", *, force: bool = False) -> None:
    """Route structlog and stdlib logging (Kopf's included) through one renderer. Idempotent unless ``force``."""
    global _configured  # noqa: PLW0603 - one configuration per process, by design
    if _configured and not force:
        return
    use_json = log_format == LogFormat.JSON or (log_format == LogFormat.AUTO and not sys.stderr.isatty())
    renderer: Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _kopf_object_ref],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_QuietPokes())
    root = logging.getLogger()
    root.handlers[:] = [handler]  # replaces the handler `kopf run` installed: one format for everything
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "urllib3", "kubernetes", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _configured = True


def _keep(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str, **bound: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name, **bound)
    return logger
