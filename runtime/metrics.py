"""Prometheus metrics of the runtime, in a registry of their own (never the global one).

`get_metrics()` creates them once per process; `reset_metrics()` drops them so each test starts from zero. Components
take a `RuntimeMetrics` argument, so tests may also pass a fresh instance.
"""

from __future__ import annotations

import bisect
import collections
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
ROUTER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class DecisionCounts:
    """Decisions per arm, the probability vectors they were drawn from and the decide latency histogram, kept in plain
    lists: the decide hot path adds to them without the locks of prometheus_client's metric objects (~1 us per
    decision); a collector reads them on scrape.

    Probability vectors are summed per arm as runs: a non-contextual policy hands out the same (cached) vector object
    until its state changes, so the hot path only counts the run (`run_length += 1` when the vector `is` the run's);
    a new vector adds the finished run to `probability_sums` (one multiply per arm) and starts the next. A contextual
    policy's vectors differ per request: every decision then ends a run, at the cost of a loop over the arms next to
    the policy's own per-arm work. The runtime is single-threaded (decide and scrape run on one event loop), so a
    scrape, which adds the open run first, sees every vector exactly once."""

    __slots__ = (
        "arm_names",
        "bucket_counts",
        "buckets",
        "by_arm",
        "latency_sum",
        "policy",
        "probability_sums",
        "run_length",
        "run_vector",
    )

    def __init__(self, arm_names: list[str], policy: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.arm_names = list(arm_names)
        self.policy = policy
        self.by_arm = [0] * len(arm_names)
        self.buckets = list(buckets)
        self.bucket_counts = [0] * (len(buckets) + 1)
        self.latency_sum = 0.0
        self.probability_sums = [0.0] * len(arm_names)
        self.run_vector: tuple[float, ...] | None = None
        self.run_length = 0

    def observe(self, seconds: float) -> None:
        self.bucket_counts[bisect.bisect_left(self.buckets, seconds)] += 1
        self.latency_sum += seconds

    def served(self, probabilities: tuple[float, ...]) -> None:
        """Count one decision's probability vector (what the decide path inlines)."""
        if probabilities is self.run_vector:
            self.run_length += 1
        else:
            self.start_run(probabilities)

    def start_run(self, probabilities: tuple[float, ...]) -> None:
        """Add the open run to the sums and start one of this vector, counting its first decision."""
        self.add_run()
        self.run_vector = probabilities
        self.run_length = 1

    def add_run(self) -> None:
        """Add the open run (its vector times its length) to the per-arm sums; the run goes on from zero."""
        vector, length = self.run_vector, self.run_length
        if vector is not None and length:
            sums = self.probability_sums
            for arm, p in enumerate(vector):
                sums[arm] += length * p
            self.run_length = 0


class _DecisionCollector(Collector):
    def __init__(self) -> None:
        self.counts: DecisionCounts | None = None

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        decisions = CounterMetricFamily("croupier_decisions", "Decisions served, by chosen arm.", labels=["arm"])
        probability = CounterMetricFamily(
            "croupier_arm_probability_sum",
            "Sum over decisions served of the probability each arm had in the decision's vector; divided by the "
            "decisions' rate, the mean probability of the arm.",
            labels=["policy", "arm"],
        )
        latency = HistogramMetricFamily(
            "croupier_decide_duration_seconds",
            "Time inside the decision service's decide: the policy's checks of the request, the decision, queueing its "
            "record (no HTTP, no JSON).",
        )
        if counts is not None:
            for name, value in zip(counts.arm_names, list(counts.by_arm), strict=True):
                decisions.add_metric([name], value)
            counts.add_run()
            for name, total in zip(counts.arm_names, counts.probability_sums, strict=True):
                probability.add_metric([counts.policy, name], total)
            cumulative, total = [], 0
            bucket_counts = list(counts.bucket_counts)
            for bound, count in zip([*counts.buckets, float("inf")], bucket_counts, strict=True):
                total += count
                cumulative.append((str(bound) if bound != float("inf") else "+Inf", total))
            latency.add_metric([], cumulative, counts.latency_sum)
        yield decisions
        yield probability
        yield latency

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _CountsByLabel(Collector):
    """A counter family kept in a plain dict (no lock per increment on a hot path), read on scrape."""

    def __init__(self, name: str, documentation: str, label: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.counts: collections.Counter[str] = collections.Counter()
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in sorted(self.counts.items()):
            family.add_metric([value], count)
        yield family

    def describe(self) -> Iterator[Metric]:
        return iter(())


class RuntimeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._decision_collector = _DecisionCollector()
        r.register(self._decision_collector)
        self.rewards = Counter(
            "croupier_rewards",
            "Rewards accepted and learned, by arm; kind is reward (sent by a client) or default (window closed).",
            ["arm", "kind"],
            registry=r,
        )
        self.reward_duplicates = Counter(
            "croupier_reward_duplicates", "Rewards ignored because their decision already had one.", registry=r
        )
        self.join_misses = Counter(
            "croupier_reward_join_misses",
            "Rewards not joined to a decision: reason unknown (no such decision) or late (window closed).",
            ["reason"],
            registry=r,
        )
        self.reward_latency = Histogram(
            "croupier_reward_duration_seconds",
            "Time from a reward request's arrival to its durable acknowledgement.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.commit_latency = Histogram(
            "croupier_store_commit_duration_seconds",
            "Duration of one group commit.",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.commit_records = Counter(
            "croupier_store_committed_records", "Records committed, by kind (decision, reward).", ["kind"], registry=r
        )
        self.store_errors = Counter(
            "croupier_store_errors", "Failed store operations, by operation.", ["operation"], registry=r
        )
        self.request_errors = Counter(
            "croupier_request_errors",
            "Requests answered with an error, by path and error code.",
            ["path", "code"],
            registry=r,
        )
        self.pending_decisions = Gauge(
            "croupier_decision_log_backlog", "Decision records waiting for their commit.", registry=r
        )
        self.redis_sync_age = Gauge(
            "croupier_redis_sync_age_seconds", "Seconds since the learned totals were last read from Redis.", registry=r
        )
        self.experiment_assignments = _CountsByLabel(
            "croupier_experiment_assignments", "Assignments answered, by variant.", "variant", r
        ).counts
        self.experiment_exposures = Counter(
            "croupier_experiment_exposures", "Counted exposures made durable, by variant.", ["variant"], registry=r
        )
        self.experiment_outcomes = Counter(
            "croupier_experiment_outcomes",
            "Outcomes received, by result (accepted, duplicate, unexposed, late, notCounted).",
            ["outcome"],
            registry=r,
        )
        self.policy_info = Gauge(
            "croupier_policy_info", "The served policy (value 1).", ["policy", "version", "algorithm"], registry=r
        )
        self.scoring_fallbacks = Counter(
            "croupier_scoring_fallbacks",
            "Decisions of a model-scored policy served by its fallback, by reason (timeout, unavailable, model_error, "
            "bad_response, not_configured, signature_mismatch).",
            ["reason"],
            registry=r,
        )
        self.scoring_decisions = Counter(
            "croupier_scoring_decisions",
            "Decisions of a model-scored policy, scored by the model or by the fallback.",
            registry=r,
        )
        self.scoring_predict_latency = Histogram(
            "croupier_scoring_predict_duration_seconds",
            "Duration of one Predict call of a model-scored decision (failed calls too).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        self.router_requests = Counter(
            "croupier_router_requests",
            "Requests the model router forwarded, by model, served version, label (stable, canary, none when the "
            "request named its version) and canonical status code (OK, INVALID_ARGUMENT, UNAVAILABLE, ...).",
            ["model", "version", "label", "code"],
            registry=r,
        )
        self.router_latency = Histogram(
            "croupier_router_request_duration_seconds",
            "Time from a request's arrival at the model router to its answer, TF Serving's time included.",
            ["model", "version", "label"],
            buckets=ROUTER_BUCKETS,
            registry=r,
        )
        self.router_canary_weight = Gauge(
            "croupier_router_canary_weight",
            "Percent of the requests that name no version the router sends to the canary label, by model.",
            ["model"],
            registry=r,
        )
        self.router_table_reloads = Counter(
            "croupier_router_table_reloads",
            "Reads of a changed routing file, by outcome (applied, invalid, unreadable).",
            ["outcome"],
            registry=r,
        )

    def decision_counts(self, arm_names: list[str], policy: str) -> DecisionCounts:
        """The counters the decide path increments (one set per served policy; a new call replaces the last)."""
        counts = DecisionCounts(arm_names, policy)
        self._decision_collector.counts = counts
        return counts

    def track_backlog(self, size: Callable[[], int]) -> None:
        self.pending_decisions.set_function(lambda: float(size()))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


_lock = threading.Lock()
_metrics: RuntimeMetrics | None = None


def get_metrics() -> RuntimeMetrics:
    global _metrics  # noqa: PLW0603 - one registry per process, by design
    with _lock:
        if _metrics is None:
            _metrics = RuntimeMetrics()
        return _metrics


def reset_metrics() -> None:
    global _metrics  # noqa: PLW0603
    with _lock:
        _metrics = None
