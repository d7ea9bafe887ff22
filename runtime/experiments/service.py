"""The experiment service: assigns units to variants, records exposures, joins outcomes and keeps the sums.

Transport-free, on typed values (`croupier.runtime.experiments.records`); adapters decode and encode bodies. What a
request may change depends on the served state:

- Running: a unit gets its remembered variant (sticky) or the hash's; its first assignment in the epoch logs one
  exposure, counted if the unit was first assigned in this epoch (sticky) or always (not sticky). Outcomes of exposed,
  counted units within the attribution window are stored and summed.
- Paused: every unit gets control; nothing is logged or counted (outcomes are answered `notCounted`).
- Concluded: KeepWinner serves the winner (status.winner of the served manifest, else control), KeepControl control,
  Nothing each unit's own variant; nothing is logged or counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import structlog

from croupier.api.assignment import Assigner
from croupier.api.experiment import ExperimentState, OnConclude
from croupier.api.wire import ExposureOutcome, OutcomeStatus
from croupier.runtime.errors import CroupierError, UnknownMetric, UnknownVariant
from croupier.runtime.experiments import aggregation
from croupier.runtime.experiments.config import ServedExperiment
from croupier.runtime.experiments.records import (
    Assignment,
    AssignRequest,
    ExposureItem,
    ExposureResult,
    ExposureRow,
    JoinedOutcome,
    OutcomeItem,
    OutcomeResult,
    UnitState,
)
from croupier.runtime.experiments.store import ExperimentStore, SumsKey, Totals
from croupier.runtime.experiments.targets import PolicyClient, model_route
from croupier.runtime.metrics import RuntimeMetrics

log = structlog.get_logger("croupier.runtime.experiments")

_time = time.time


class ExperimentService:
    def __init__(
        self,
        served: ServedExperiment,
        store: ExperimentStore,
        metrics: RuntimeMetrics,
        policies: PolicyClient,
        *,
        replica: str | None = None,
    ) -> None:
        spec = served.spec
        self.served = served
        self.store = store
        self.metrics = metrics
        self.policies = policies
        self.replica = replica
        self.epoch = served.epoch
        self.sticky = spec.assignment.sticky
        self.window = float(spec.outcomes.attribution_window_seconds)
        self.weights = spec.weights()
        self.assigner = Assigner(served.salt, self.weights, spec.assignment.algorithm).assign
        self.variants = {v.name: v for v in spec.variants}
        self.kinds = {m.name: m.kind for m in served.metrics}
        self.state = spec.state
        self.counting = spec.state == ExperimentState.RUNNING
        # What everyone is served when not Running (None: each unit's own variant).
        self.fixed: str | None = None
        if spec.state == ExperimentState.PAUSED:
            self.fixed = spec.control
        elif spec.state == ExperimentState.CONCLUDED:
            if spec.on_conclude == OnConclude.KEEP_WINNER:
                self.fixed = served.winner or spec.control
            elif spec.on_conclude == OnConclude.KEEP_CONTROL:
                self.fixed = spec.control
        self.exposures = dict.fromkeys(self.variants, 0)
        self.sums: dict[SumsKey, list[float]] = {}
        self.epoch_started = _time()
        self._assigned = metrics.experiment_assignments
        self._local_units = store.local_units
        self._log_exposure = store.log_exposure
        # The answers of payload and model variants, which depend only on the variant and whether the unit counts.
        self._static_variants = frozenset(n for n, v in self.variants.items() if v.decision_policy_ref is None)
        self._static = {(n, c): self._static_target(n, c) for n in self._static_variants for c in (False, True)}
        self._exposed = metrics.experiment_exposures
        self._outcomes = metrics.experiment_outcomes

    # ------------------------------------------------------------------ assign (hot path)
    def assign_now(self, request: AssignRequest) -> Assignment | None:
        """`assign` without waiting, for what needs no call: units held by the store in memory and a payload or
        model target (answers shared per variant). None, before any effect, when the request needs `assign`."""
        unit_id = request.unit_id
        if self.fixed is not None:
            variant, counted = self.fixed, False
        else:
            local = self._local_units
            if local is None:
                return None
            state = local.get(unit_id)
            variant = self._variant_of(unit_id, state)
            if not self.counting:
                counted = False
            elif state is not None and state.exposed_epoch == self.epoch:
                counted = state.counted
            else:
                if variant not in self._static_variants:
                    return None
                row = self._exposure(unit_id, variant, state)
                counted = row.counted
                if not self._log_exposure(row):  # type: ignore[misc]  # set with _local_units
                    return None
        answer = self._static.get((variant, counted))
        if answer is None:
            return None
        self._assigned[variant] += 1
        return answer

    async def assign(self, request: AssignRequest) -> Assignment:
        unit_id = request.unit_id
        if self.fixed is not None:
            variant, counted = self.fixed, False
        elif not self.counting:  # Concluded with onConclude Nothing: each unit's own variant, not logged
            state = await self.store.unit(unit_id)
            variant = self._variant_of(unit_id, state)
            counted = False
        else:
            local = self._local_units
            state = local.get(unit_id) if local is not None else await self.store.unit(unit_id)
            variant = self._variant_of(unit_id, state)
            if state is not None and state.exposed_epoch == self.epoch:
                counted = state.counted
            else:
                # The target answers first: a unit whose DecisionPolicy did not answer saw nothing, so is not exposed.
                row = self._exposure(unit_id, variant, state)
                assignment = await self._target(variant, row.counted, request)
                if not await self.store.expose(row, durable=False):
                    state = await self.store.unit(unit_id)  # another request exposed it first: its record counts
                    if state is not None and state.counted != row.counted:
                        assignment = assignment._replace(counted=state.counted)
                self._assigned[variant] += 1
                return assignment
        self._assigned[variant] += 1
        return await self._target(variant, counted, request)

    def _exposure(self, unit_id: str, variant: str, state: UnitState | None) -> ExposureRow:
        """The unit's first exposure in this epoch. Sticky: counted only for a unit first assigned in this epoch (one
        remembered from an earlier epoch, or moved off a removed variant, did not get its variant from this epoch's
        split). Not sticky: every unit is hashed under this epoch's split, so each counts."""
        first_epoch = self.epoch if state is None else state.first_epoch
        counted = not self.sticky or first_epoch == self.epoch
        return ExposureRow(self.epoch, unit_id, variant, _time(), counted, first_epoch)

    def _variant_of(self, unit_id: str, state: UnitState | None) -> str:
        """Sticky: the remembered variant while it exists; otherwise (and not sticky) the hash's."""
        if self.sticky and state is not None and state.variant in self.variants:
            return state.variant
        return self.assigner(unit_id)

    def _static_target(self, variant: str, counted: bool) -> Assignment:
        spec = self.variants[variant]
        if spec.payload is not None:
            return Assignment(variant, counted, payload=spec.payload)
        assert spec.model_deployment_ref is not None
        ref = spec.model_deployment_ref
        return Assignment(variant, counted, model=model_route(ref.name, ref.version))

    async def _target(self, variant: str, counted: bool, request: AssignRequest) -> Assignment:
        spec = self.variants[variant]
        if spec.decision_policy_ref is not None:
            context: object | None = request.context
            if context is None and request.attributes:
                numbers = {
                    k: v for k, v in request.attributes.items() if type(v) in (int, float) and not isinstance(v, bool)
                }
                context = numbers or None
            decision = await self.policies.decide(spec.decision_policy_ref.name, request.unit_id, context, variant)
            return Assignment(variant, counted, decision=decision)
        return self._static_target(variant, counted)

    # ------------------------------------------------------------------ exposures (local assignment)
    async def expose(self, items: list[ExposureItem]) -> list[ExposureResult]:
        """Record exposures an SDK computed itself; each answered once durable. The whole request is checked first."""
        for item in items:
            if item.variant not in self.variants:
                raise UnknownVariant(
                    f"unknown variant {item.variant!r}; variants: {list(self.variants)}", field=item.field + "variant"
                )
        results: list[ExposureResult] = []
        seen: set[str] = set()
        states = await self.store.units([item.unit_id for item in items])
        for item, known in zip(items, states, strict=True):
            # An earlier item of this request may have exposed the unit: ask again only then.
            state = await self.store.unit(item.unit_id) if item.unit_id in seen else known
            seen.add(item.unit_id)
            expected = self.fixed or self._variant_of(item.unit_id, state)
            if item.epoch is not None and item.epoch != self.epoch:
                results.append(ExposureResult(item.unit_id, ExposureOutcome.STALE, expected))
            elif not self.counting:
                results.append(ExposureResult(item.unit_id, ExposureOutcome.NOT_COUNTING, expected))
            elif item.variant != expected:
                results.append(ExposureResult(item.unit_id, ExposureOutcome.MISMATCH, expected))
            elif state is not None and state.exposed_epoch == self.epoch:
                results.append(ExposureResult(item.unit_id, ExposureOutcome.DUPLICATE, expected))
            else:
                row = self._exposure(item.unit_id, expected, state)
                stored = await self.store.expose(row, durable=True)
                outcome = ExposureOutcome.RECORDED if stored else ExposureOutcome.DUPLICATE
                results.append(ExposureResult(item.unit_id, outcome, expected))
        return results

    # ------------------------------------------------------------------ outcomes
    async def outcomes(self, items: list[OutcomeItem], *, received_at: float | None = None) -> list[OutcomeResult]:
        """Join outcomes to their units' exposures and store the counted ones; answered once they are durable. The
        whole request is checked first: an unknown metric or a value its type forbids rejects it, changing nothing."""
        now = _time() if received_at is None else received_at
        checked = []
        for item in items:
            kind = self.kinds.get(item.metric)
            if kind is None:
                raise UnknownMetric(
                    f"unknown metric {item.metric!r}; this experiment measures {list(self.kinds)}",
                    field=item.field + "metric",
                )
            checked.append((item, kind, aggregation.check_value(kind, item.value, item.field + "value")))
        results: list[OutcomeResult | None] = []
        joined: list[JoinedOutcome] = []
        states = await self.store.units([item.unit_id for item, _, _ in checked])
        for index, ((item, kind, value), state) in enumerate(zip(checked, states, strict=True)):
            status: OutcomeStatus | None = None
            if state is None or state.exposed_epoch != self.epoch:
                status = OutcomeStatus.UNEXPOSED
            elif not self.counting or not state.counted:
                status = OutcomeStatus.NOT_COUNTED
            elif now > state.exposed_at + self.window:
                status = OutcomeStatus.LATE
            if status is not None:
                results.append(OutcomeResult(item.unit_id, item.event_id, status))
                self._outcomes.labels(status.value).inc()
                continue
            assert state is not None
            results.append(None)
            joined.append(JoinedOutcome(index, item._replace(value=value), state.variant, kind, now))
        if joined:
            try:
                stored = await self.store.submit_outcomes(joined)
            except CroupierError as exc:
                log.info("outcomes rejected", error=exc.code, reason=exc.message, count=len(items))
                raise
            for entry, ok in zip(joined, stored, strict=True):
                status = OutcomeStatus.ACCEPTED if ok else OutcomeStatus.DUPLICATE
                results[entry.position] = OutcomeResult(entry.item.unit_id, entry.item.event_id, status)
                self._outcomes.labels(status.value).inc()
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------ what the store hands back
    def add_exposures(self, rows: list[ExposureRow]) -> None:
        exposures, epoch = self.exposures, self.epoch
        added: dict[str, int] = {}
        for row in rows:
            if row.counted and row.epoch == epoch and row.variant in exposures:
                added[row.variant] = added.get(row.variant, 0) + 1
        for variant, count in added.items():
            exposures[variant] += count
            self._exposed.labels(variant).inc(count)

    def add_outcomes(self, deltas: Iterable[tuple[str, str, int, float, float]]) -> None:
        sums = self.sums
        for variant, metric, count, total, squares in deltas:
            entry = sums.get((variant, metric))
            if entry is None:
                sums[(variant, metric)] = [count, total, squares]
            else:
                entry[0] += count
                entry[1] += total
                entry[2] += squares

    def adopt(self, totals: Totals) -> None:
        for variant in self.exposures:
            self.exposures[variant] = totals.exposures.get(variant, 0)
        self.sums = {key: list(value) for key, value in totals.sums.items()}
        self.epoch_started = totals.epoch_started

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        served = self.served
        variants = []
        for name, weight in self.weights:
            exposures = self.exposures.get(name, 0)
            metrics = []
            for rule in served.metrics:
                count, total, squares = self.sums.get((name, rule.name), (0, 0.0, 0.0))
                metrics.append(
                    {
                        "name": rule.name,
                        "type": rule.type,
                        "aggregation": rule.aggregation,
                        "count": exposures if rule.counts_every_exposure else int(count),
                        "sum": float(total),
                        "sumSquares": max(0.0, float(squares)),
                    }
                )
            variants.append({"name": name, "weight": weight, "exposures": exposures, "metrics": metrics})
        return {
            "experiment": {"name": served.name, "namespace": served.namespace},
            "generation": served.generation,
            "experimentVersion": served.version,
            "epoch": self.epoch,
            "epochStartTime": self.epoch_started,
            "state": self.state,
            "backend": self.store.backend,
            "replica": self.replica,
            "variants": variants,
            "totalExposures": sum(self.exposures.values()),
        }

    def health(self) -> str | None:
        return self.store.health()
