"""The routing table from the file the operator writes (a ConfigMap key mounted as a volume), read again every
``poll_seconds``: a weight change reaches the router without a restart. Kubelet refreshes a mounted ConfigMap on its
sync period plus its cache TTL (up to about a minute by default); docs/router.md says how to shorten that delay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import structlog
import yaml
from pydantic import ValidationError

from croupier.runtime.modelrouter.routing import RoutingTable

log = structlog.get_logger("croupier.runtime.modelrouter")


class RoutingTableError(ValueError):
    """The routing file cannot be read as a routing table; the message names the problem."""


def parse_table(text: str | bytes, source: str) -> RoutingTable:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise RoutingTableError(f"{source}: not YAML or JSON: {error}") from error
    if document is None:
        return RoutingTable()
    try:
        return RoutingTable.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors(include_url=False)
        )
        raise RoutingTableError(f"{source}: {problems}") from error


class TableFile:
    """Reads ``path`` when its bytes change and hands the new table to ``apply``; a bad or missing file keeps the
    table in force (and is logged once per distinct content)."""

    def __init__(self, path: Path, apply: Callable[[RoutingTable], None], on_reload: Callable[[str], None]) -> None:
        self.path = path
        self._apply = apply
        self._on_reload = on_reload
        self._seen: bytes | None = None

    def check(self) -> bool:
        """Read the file once; True when a new table was applied."""
        try:
            content = self.path.read_bytes()
        except OSError as error:
            if self._seen != b"":
                log.warning("routing file unreadable, the table in force stays", path=str(self.path), error=str(error))
                self._on_reload("unreadable")
            self._seen = b""
            return False
        if content == self._seen:
            return False
        self._seen = content
        try:
            table = parse_table(content, str(self.path))
        except RoutingTableError as error:
            log.error("routing file rejected, the table in force stays", error=str(error))
            self._on_reload("invalid")
            return False
        self._apply(table)
        self._on_reload("applied")
        log.info(
            "routing table applied",
            path=str(self.path),
            weights={name: route.canary_weight for name, route in table.models.items()},
        )
        return True

    async def watch(self, poll_seconds: float) -> None:
        """Poll until cancelled."""
        while True:
            self.check()  # a few hundred bytes: no thread needed
            await asyncio.sleep(poll_seconds)
