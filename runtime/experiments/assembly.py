"""Wires one experiment runtime together: the served Experiment, its store and the experiment service."""

from __future__ import annotations

import time
from typing import Any

import structlog

from croupier.runtime.errors import ExperimentConfigError
from croupier.runtime.experiments.config import ServedExperiment
from croupier.runtime.experiments.service import ExperimentService
from croupier.runtime.experiments.store import ExperimentStore
from croupier.runtime.experiments.targets import PolicyClient, PolicyTokens
from croupier.runtime.metrics import RuntimeMetrics, get_metrics
from croupier.runtime.settings import RewardSync, RuntimeSettings
from croupier.runtime.store.experiment_sqlite import SqliteExperimentStore, experiment_database_path

log = structlog.get_logger("croupier.runtime")


class ExperimentRuntime:
    """Everything one runtime process serving an Experiment holds; `start`/`stop` run inside the server's loop."""

    def __init__(
        self, settings: RuntimeSettings, served: ServedExperiment, *, metrics: RuntimeMetrics | None = None
    ) -> None:
        self.settings = settings
        self.served = served
        self.metrics = metrics or get_metrics()
        kinds = {m.name: m.kind for m in served.metrics}
        self.store: ExperimentStore
        if settings.redis_url:
            from croupier.runtime.store.experiment_redis import RedisExperimentStore  # noqa: PLC0415

            prefix = settings.redis_key_prefix or f"croupier:{served.namespace or 'default'}:exp:{served.name}"
            self.store = RedisExperimentStore(
                settings.redis_url,
                prefix,
                epoch=served.epoch,
                kinds=kinds,
                window=float(served.spec.outcomes.attribution_window_seconds),
                metrics=self.metrics,
                sync_interval=settings.redis_sync_interval_ms / 1000.0,
            )
        else:
            self.store = SqliteExperimentStore(
                experiment_database_path(settings.state_dir, served.namespace, served.name),
                epoch=served.epoch,
                kinds=kinds,
                metrics=self.metrics,
                flush_interval=settings.decision_flush_interval_ms / 1000.0,
                max_pending=settings.max_pending_decisions,
                full_sync=settings.reward_sync == RewardSync.FULL,
            )
        urls = _parse_urls(settings.policy_urls)
        self.policies = PolicyClient(
            template=settings.policy_url_template,
            namespace=served.namespace,
            urls=urls,
            timeout=settings.target_timeout_ms / 1000.0,
            tokens=PolicyTokens(settings.policy_token_dir) if settings.policy_token_dir is not None else None,
        )
        self.service = ExperimentService(served, self.store, self.metrics, self.policies, replica=settings.replica)
        self.started = False
        self._stopped = False

    async def start(self) -> None:
        began = time.perf_counter()
        totals = await self.store.restore()
        self.service.adopt(totals)
        await self.store.start(self.service)
        await self.policies.start()
        self.started = True
        log.info(
            "experiment runtime started",
            experiment=self.served.name,
            namespace=self.served.namespace,
            version=self.served.version,
            epoch=self.served.epoch,
            state=self.served.spec.state,
            backend=self.store.backend,
            exposures=sum(totals.exposures.values()),
            restore_seconds=round(time.perf_counter() - began, 3),
        )

    async def stop(self, *, checkpoint: bool = True) -> None:
        if self._stopped:
            return
        self._stopped = True
        await self.policies.close()
        await self.store.close()
        log.info("experiment runtime stopped", experiment=self.served.name)

    def liveness(self) -> str | None:
        return self.store.liveness() if self.started else None

    def readiness(self) -> str | None:
        if not self.started:
            return "restoring state"
        return self.service.health()

    def describe(self) -> dict[str, Any]:
        return {"experiment": self.served.name, "state_dir": str(self.settings.state_dir)}


def _parse_urls(pairs: list[str]) -> dict[str, str]:
    urls = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise ExperimentConfigError(f"a policy URL is NAME=http://host:port, got {pair!r}")
        urls[name] = url
    return urls
