"""Wires one runtime together: the served policy, its engine, the state backend and the decision service."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import NamedTuple

import structlog

from croupier.api.decisionpolicy import StateBackend
from croupier.runtime.decisions.engine import Engine, build_engine
from croupier.runtime.decisions.ids import DecisionIds
from croupier.runtime.decisions.join import JoinRules
from croupier.runtime.decisions.service import DecisionService
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.metrics import RuntimeMetrics, get_metrics
from croupier.runtime.policy_file import ServedPolicy
from croupier.runtime.scoring.scorer import Scorer
from croupier.runtime.settings import RewardSync, RuntimeSettings
from croupier.runtime.store.base import Store
from croupier.runtime.store.sqlite import SqliteStore, database_path

log = structlog.get_logger("croupier.runtime")


class StartReport(NamedTuple):
    """How the runtime's learned state came back at start."""

    checkpoint_seq: int
    """Store sequence number of the checkpoint it started from (0: none)."""
    replayed_rewards: int
    """Rewards stored after that checkpoint and learned again."""


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
        rules = JoinRules.of(spec)
        redis = spec.state.backend == StateBackend.REDIS
        # The SQLite decision log: the whole state when embedded, this replica's decisions and rewards with Redis.
        self.sqlite = SqliteStore(
            database_path(settings.state_dir, served.namespace, served.name),
            metrics=self.metrics,
            rules=rules,
            version=served.version,
            arm_names=spec.arm_names,
            feature_names=served.feature_names,
            flush_interval=settings.decision_flush_interval_ms / 1000.0,
            flush_max_records=settings.decision_flush_max_records,
            max_pending=settings.max_pending_decisions,
            full_sync=settings.reward_sync == RewardSync.FULL,
            sweep_interval=settings.sweep_interval_seconds,
            retention_seconds=settings.retention_hours * 3600.0,
            join=not redis,
        )
        ids = DecisionIds()
        self.store: Store = self.sqlite
        if redis:
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
                log=self.sqlite,
                metrics=self.metrics,
                rules=rules,
                fingerprint=served.fingerprint,
                arm_names=spec.arm_names,
                feature_names=served.feature_names,
                context_size=served.context_size,
                dimension=self.engine.stats.dimension,
                delta_of=self.engine.delta_of,
                local_prefix=ids.prefix,
                sync_interval=settings.redis_sync_interval_ms / 1000.0,
                flush_interval=settings.decision_flush_interval_ms / 1000.0,
                sweep_interval=settings.sweep_interval_seconds,
            )
        self.service = DecisionService(
            served,
            self.engine,
            self.store,
            self.metrics,
            ids=ids,
            replica=settings.replica,
            debug=settings.log_level.lower() == "debug",
            seed=settings.seed,
        )
        self.scorer: Scorer | None = None
        if spec.scoring is not None:
            self.scorer = Scorer(spec, served.scoring_endpoint, self.metrics)
            self.service.use_scorer(self.scorer, seed=settings.seed)
        self.started: StartReport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._checkpointed_seq = 0
        self._stopped = False

    async def start(self) -> None:
        started = time.perf_counter()
        if self.scorer is not None:
            await self.scorer.start()  # a model whose signature does not match stops the start here
        restored = await self.store.restore(self.served.fingerprint)
        replayed = self.service.restore(restored)
        self._checkpointed_seq = restored.seq
        await self.store.start(self.service)
        self._tasks.append(asyncio.create_task(self._checkpoints(), name="checkpoints"))
        self.started = StartReport(checkpoint_seq=restored.seq, replayed_rewards=replayed)
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

    async def stop(self, *, checkpoint: bool = True) -> None:
        """Commit everything queued and stop. `checkpoint=False` skips the final checkpoint, as a crash would (the
        next start replays the rewards stored after the last periodic one). A second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if checkpoint:
            self.checkpoint()
        if self.scorer is not None:
            await self.scorer.close()
        await self.store.close()
        log.info("runtime stopped", policy=self.served.name)

    def liveness(self) -> str | None:
        """None while the process can serve; otherwise why it needs a restart."""
        if self.started is None:
            return None  # still starting: the readiness probe holds traffic back
        return self.store.liveness()

    def readiness(self) -> str | None:
        if self.started is None:
            return "restoring state"
        return self.service.health()

    def checkpoint(self) -> None:
        """Save the learned statistics (with the store's next commit) if rewards were learned since the last one."""
        seq = self.service.applied_seq
        if seq > self._checkpointed_seq:
            self.store.checkpoint(self.served.fingerprint, seq, self.engine.stats.to_bytes())
            self._checkpointed_seq = seq

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.settings.checkpoint_interval_seconds)
            self.checkpoint()
