"""Wires one runtime together: the served policy, its engine, the state backend and the decision service."""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from croupier.api.decisionpolicy import StateBackend
from croupier.runtime.core.engine import Engine, build_engine
from croupier.runtime.core.service import DecisionService
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.metrics import RuntimeMetrics, get_metrics
from croupier.runtime.policies.stats import SufficientStats
from croupier.runtime.policy_file import ServedPolicy
from croupier.runtime.settings import RewardSync, RuntimeSettings
from croupier.runtime.store.base import Store
from croupier.runtime.store.sqlite import SqliteStore, database_path

log = structlog.get_logger("croupier.runtime")


class Runtime:
    """Everything one runtime process serves; `start`/`stop` run inside the server's event loop."""

    def __init__(
        self,
        settings: RuntimeSettings,
        served: ServedPolicy,
        *,
        metrics: RuntimeMetrics | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.served = served
        self.metrics = metrics or get_metrics()
        self.engine = engine or build_engine(served, seed=settings.seed)
        spec = served.spec
        self.sqlite = SqliteStore(
            database_path(settings.state_dir, served.namespace, served.name),
            metrics=self.metrics,
            learn=not spec.paused,
            default_reward=spec.reward.default_reward,
            flush_interval=settings.decision_flush_interval_ms / 1000.0,
            flush_max_records=settings.decision_flush_max_records,
            max_pending=settings.max_pending_decisions,
            full_sync=settings.reward_sync == RewardSync.FULL,
            sweep_interval=settings.sweep_interval_seconds,
            retention_seconds=settings.retention_hours * 3600.0,
            join=spec.state.backend != StateBackend.REDIS,
        )
        self.store: Store = self.sqlite
        self.service = DecisionService(
            served,
            self.engine,
            self.sqlite,
            self.metrics,
            replica=settings.replica,
            debug=settings.log_level.lower() == "debug",
        )
        if spec.state.backend == StateBackend.REDIS:
            from croupier.runtime.store.redis import RedisStore  # noqa: PLC0415 - only Redis mode needs the client

            url = settings.redis_url or (spec.state.redis.url if spec.state.redis else None)
            if not url:
                raise PolicyConfigError(
                    "state.backend is Redis but no URL is known: set spec.state.redis.url or CROUPIER_RUNTIME_REDIS_URL"
                )
            prefix = (
                settings.redis_key_prefix
                or (spec.state.redis.key_prefix if spec.state.redis else None)
                or f"croupier:{served.namespace or 'default'}:{served.name}"
            )
            self.store = RedisStore(
                url,
                prefix,
                served=served,
                log=self.sqlite,
                metrics=self.metrics,
                engine=self.engine,
                counters=self.service.counters,
                local_prefix=self.service.id_prefix,
                sync_interval=settings.redis_sync_interval_ms / 1000.0,
                flush_interval=settings.decision_flush_interval_ms / 1000.0,
                sweep_interval=settings.sweep_interval_seconds,
            )
            self.service.store = self.store
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._checkpointed_seq = 0

    async def start(self) -> None:
        started = time.perf_counter()
        restored = await asyncio.to_thread(self.sqlite.restore, self.served.fingerprint)
        replayed = 0
        if self.store is self.sqlite:
            if restored.stats is not None:
                self.engine.replace_stats(SufficientStats.from_bytes(restored.stats))
                self.service.applied_seq = restored.seq
                self._checkpointed_seq = restored.seq
            replayed = self.service.replay(restored.tail)
            self.service.restore_counters(restored.counters)
        loop = asyncio.get_running_loop()
        if self.store is not self.sqlite:
            self.sqlite.start(loop, lambda learned: None)
        self.store.start(loop, self.service.learn)
        if self.store is self.sqlite:
            self._tasks.append(asyncio.create_task(self._checkpoints(), name="checkpoints"))
        else:
            await self.store.wait_synced()  # type: ignore[attr-defined]
        self._started = True
        if self.served.spec.scoring is not None:
            log.warning(
                "spec.scoring is not implemented by this runtime: decisions use the policy's own estimates "
                "(as with fallback Policy)",
                model_deployment=self.served.spec.scoring.model_deployment_ref.name,
            )
        log.info(
            "runtime started",
            policy=self.served.name,
            namespace=self.served.namespace,
            version=self.served.version,
            backend=self.store.backend,
            checkpoint_seq=restored.seq,
            replayed_rewards=replayed,
            restore_seconds=round(time.perf_counter() - started, 3),
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.store is self.sqlite:
            self._checkpoint()
        else:
            await self.store.close()
        await self.sqlite.close()
        log.info("runtime stopped", policy=self.served.name)

    def liveness(self) -> str | None:
        """None while the process can serve; otherwise why it needs a restart."""
        if not self._started:
            return None  # still starting: the readiness probe holds traffic back
        return self.sqlite.liveness()

    def readiness(self) -> str | None:
        if not self._started:
            return "restoring state"
        return self.service.health()

    def _checkpoint(self) -> None:
        seq = self.service.applied_seq
        if seq > self._checkpointed_seq:
            self.sqlite.save_checkpoint(self.served.fingerprint, seq, self.engine.stats.to_bytes())
            self._checkpointed_seq = seq

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.settings.checkpoint_interval_seconds)
            self._checkpoint()
