"""One Predict per decision, exploration over the scores, and the fallback when the model cannot answer in time.

`Scorer.vector` is "the probability vector for this request" of a model-scored policy: decide draws one arm from it,
and anything else that needs the policy's distribution for a request (a ranking) calls the same function.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

import grpc
import numpy as np
import structlog

from croupier.api.decisionpolicy import DecisionPolicySpec, ScoringFallback
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.policy_file import ScoringEndpoint
from croupier.runtime.scoring import prediction_service_pb2 as pb
from croupier.runtime.scoring.client import PredictionClient
from croupier.runtime.scoring.exploration import exploration_of
from croupier.runtime.scoring.tensors import (
    BadScores,
    SignatureMismatch,
    check_signature,
    predict_request,
    scores_of,
    signature_of,
)

log = structlog.get_logger("croupier.runtime.scoring")

START_CHECK_TIMEOUT = 5.0
"""How long the start waits for GetModelMetadata before it serves (falling back) and keeps checking."""
RECHECK_SECONDS = 5.0


class FallbackReason(StrEnum):
    TIMEOUT = "timeout"
    """Predict took longer than spec.scoring.timeoutMilliseconds."""
    UNAVAILABLE = "unavailable"
    """The model server could not be reached (gRPC UNAVAILABLE)."""
    MODEL_ERROR = "model_error"
    """Predict failed with another gRPC status (e.g. INVALID_ARGUMENT from the model, NOT_FOUND for the label)."""
    BAD_RESPONSE = "bad_response"
    """The response had no finite score per eligible arm."""
    NOT_CONFIGURED = "not_configured"
    """The runtime does not know the model's address (the ModelDeployment is missing or has no endpoint yet)."""
    SIGNATURE_MISMATCH = "signature_mismatch"
    """The model's signature does not match the layout (found after start, e.g. a new version behind the label)."""


class ScoredVector(NamedTuple):
    """The probability vector of one request of a model-scored policy, with what produced it."""

    probabilities: tuple[float, ...]
    """Every arm of the policy, in spec order; 0 outside the eligible arms; the floor applied."""
    scores: tuple[float, ...] | None
    """The model's score per arm (NaN outside the eligible arms); None when the fallback served."""
    model_version: int | None
    """The model version that answered (from the Predict response's model_spec)."""
    fallback: FallbackReason | None
    """Why the fallback served (None: the model's scores did)."""


_CODES = {
    grpc.StatusCode.DEADLINE_EXCEEDED: FallbackReason.TIMEOUT,
    grpc.StatusCode.UNAVAILABLE: FallbackReason.UNAVAILABLE,
}


def model_spec(spec: DecisionPolicySpec, model_name: str) -> pb.ModelSpec:
    scoring = spec.scoring
    assert scoring is not None
    out = pb.ModelSpec(name=model_name, signature_name=scoring.signature_name)
    if scoring.version is not None:
        out.version.value = scoring.version
    else:
        out.version_label = scoring.label or ""
    return out


class Scorer:
    def __init__(
        self,
        spec: DecisionPolicySpec,
        endpoint: ScoringEndpoint | None,
        metrics: RuntimeMetrics,
    ) -> None:
        scoring = spec.scoring
        if scoring is None:
            raise ValueError("the policy has no spec.scoring")
        self.spec = spec
        self.endpoint = endpoint
        self.metrics = metrics
        self.timeout = scoring.timeout_milliseconds / 1000.0
        self.uniform_fallback = scoring.fallback == ScoringFallback.UNIFORM
        self.floor = spec.exploration.min_probability
        self.explore = exploration_of(scoring.exploration)
        self.n_arms = len(spec.arms)
        self.context_size = spec.context.size if spec.context is not None else 0
        names = spec.arm_feature_names
        self.arm_size = len(names)
        self.arm_matrix = np.array([a.feature_vector(names) for a in spec.arms], dtype="<f4").reshape(
            self.n_arms, self.arm_size
        )
        self.all_arms = list(range(self.n_arms))
        self.client: PredictionClient | None = None  # made in `start`, inside the event loop that serves
        self.model_spec = model_spec(spec, endpoint.model_name) if endpoint is not None else None
        self.disabled: FallbackReason | None = None if endpoint is not None else FallbackReason.NOT_CONFIGURED
        self.decisions = 0
        self.fallbacks: dict[str, int] = {}
        self.last_model_version: int | None = None
        self._failing: FallbackReason | None = None
        self._fallback_counter = {r: metrics.scoring_fallbacks.labels(r.value) for r in FallbackReason}
        self._checker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ start: the signature check
    async def start(self) -> None:
        """Check the model's signature (GetModelMetadata). A mismatch is a configuration error (raised: the runtime
        does not start); an unreachable model server is not: decisions fall back and the check repeats."""
        if self.endpoint is None or self.model_spec is None:
            log.warning("scoring has no model address: every decision falls back", reason="not_configured")
            return
        self.client = PredictionClient(self.endpoint.address)
        try:
            await self.check()
        except SignatureMismatch as exc:
            raise PolicyConfigError(self._mismatch_message(exc)) from None
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "model signature not checked yet: the model server did not answer",
                address=self.endpoint.address if self.endpoint else None,
                code=exc.code().name,
                details=exc.details(),
            )
            self._checker = asyncio.create_task(self._recheck(), name="scoring-signature-check")

    def _mismatch_message(self, exc: SignatureMismatch) -> str:
        assert self.model_spec is not None
        target = self.model_spec.version_label or f"version {self.model_spec.version.value}"
        return (
            f"spec.scoring: model {self.model_spec.name!r} ({target}, signature "
            f"{self.model_spec.signature_name!r}) does not match Croupier's scoring layout: {exc}"
        )

    async def check(self) -> None:
        assert self.client is not None and self.model_spec is not None
        response = await self.client.metadata(self.model_spec, START_CHECK_TIMEOUT)
        check_signature(signature_of(response, self.model_spec.signature_name), self.context_size, self.arm_size)
        log.info(
            "model signature checked",
            model=self.model_spec.name,
            version=int(response.model_spec.version.value) or None,
            context=self.context_size,
            arm_features=self.arm_size,
        )

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_SECONDS)
            try:
                await self.check()
            except SignatureMismatch as exc:
                self.disabled = FallbackReason.SIGNATURE_MISMATCH
                log.error(
                    "model signature does not match: every decision falls back", error=self._mismatch_message(exc)
                )
                return
            except grpc.aio.AioRpcError:
                continue
            return

    async def close(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
        if self.client is not None:
            await self.client.close()

    # ------------------------------------------------------------------ the probability vector for this request
    async def vector(
        self,
        context: Sequence[float] | None,
        eligible: list[int] | None,
        policy_vector: Callable[[], tuple[float, ...]],
    ) -> ScoredVector:
        """Score the eligible arms (one Predict) and explore over the scores; on any failure the fallback's vector.
        ``policy_vector`` is the policy's own vector for this request (called only when fallback Policy serves)."""
        self.decisions += 1
        self.metrics.scoring_decisions.inc()
        arms = self.all_arms if eligible is None else eligible
        reason = self.disabled
        if reason is None and self.client is None:  # before `start` (the runtime is not ready yet)
            reason = FallbackReason.NOT_CONFIGURED
        if reason is None:
            assert self.client is not None and self.model_spec is not None
            rows = self.arm_matrix if eligible is None else self.arm_matrix[eligible]
            request = predict_request(self.model_spec, context, self.context_size, rows)
            started = time.perf_counter()
            try:
                response = await self.client.predict(request, self.timeout)
                scores = scores_of(response, len(arms))
            except grpc.aio.AioRpcError as exc:
                reason = _CODES.get(exc.code(), FallbackReason.MODEL_ERROR)
                self._note_failure(reason, exc.details() or exc.code().name)
            except BadScores as exc:
                reason = FallbackReason.BAD_RESPONSE
                self._note_failure(reason, str(exc))
            finally:
                self.metrics.scoring_predict_latency.observe(time.perf_counter() - started)
            if reason is None:
                if self._failing is not None:
                    log.info("model scores again", after=self._failing.value)
                    self._failing = None
                version = int(response.model_spec.version.value) if response.model_spec.HasField("version") else None
                self.last_model_version = version
                vector = self._full(arms, apply_floor(self.explore(scores), self.floor))
                full_scores = [math.nan] * self.n_arms
                for arm, score in zip(arms, scores, strict=True):
                    full_scores[arm] = score
                return ScoredVector(vector, tuple(full_scores), version, None)
        self.fallbacks[reason.value] = self.fallbacks.get(reason.value, 0) + 1
        self._fallback_counter[reason].inc()
        uniform = self.uniform_fallback
        vector = self._full(arms, [1.0 / len(arms)] * len(arms)) if uniform else policy_vector()
        return ScoredVector(vector, None, None, reason)

    def _full(self, arms: list[int], probabilities: list[float]) -> tuple[float, ...]:
        if len(arms) == self.n_arms and arms is self.all_arms:
            return tuple(probabilities)
        full = [0.0] * self.n_arms
        for arm, p in zip(arms, probabilities, strict=True):
            full[arm] = p
        return tuple(full)

    def _note_failure(self, reason: FallbackReason, details: str) -> None:
        # One line when the model starts failing (or fails differently), not one per decision: the record of every
        # decision keeps its own reason, and the counter counts them.
        if self._failing != reason:
            log.warning("model scoring failed: decisions fall back", reason=reason.value, details=details[:300])
            self._failing = reason

    # ------------------------------------------------------------------ /v1/stats
    def stats(self) -> dict[str, Any]:
        fallbacks = sum(self.fallbacks.values())
        return {
            "modelName": self.model_spec.name if self.model_spec is not None else None,
            "address": self.endpoint.address if self.endpoint is not None else None,
            "modelVersion": self.last_model_version,
            "decisions": self.decisions,
            "fallbacks": dict(sorted(self.fallbacks.items())),
            "fallbackRate": fallbacks / self.decisions if self.decisions else None,
        }
