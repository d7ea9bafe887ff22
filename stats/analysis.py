"""One analysis of an experiment: SRM check, traffic sufficiency (and FixedHorizon's plan), every treatment against
control on the primary metric and each guardrail, Holm across variants, and the winner rule.

Pure: sufficient statistics in, a frozen :class:`Analysis` out; the operator writes it to status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from croupier.stats import frequentist
from croupier.stats.comparison import ArmComparison, compare_arms, mean_and_variance
from croupier.stats.inputs import (
    AnalysisConfig,
    Correction,
    Direction,
    Guardrail,
    Method,
    Metric,
    MetricKind,
    Moments,
    StatsInputError,
    VariantData,
)
from croupier.stats.results import (
    Analysis,
    AnalysisState,
    Comparison,
    GuardrailResult,
    GuardrailState,
    Interval,
    VariantResult,
)

# The result types live in croupier.stats.results (numpy-free); this module only computes them.
__all__ = [
    "analyze",
    "guardrail_interval_alpha",
    "guardrail_states",
    "planned_samples_per_variant",
]


def analyze(
    variants: Sequence[VariantData],
    control: str,
    metric: Metric,
    guardrails: Sequence[Guardrail] = (),
    config: AnalysisConfig | None = None,
    *,
    planned_samples: int | None = None,
) -> Analysis:
    """Analyse one experiment; raises :class:`StatsInputError` on inconsistent input (and computes nothing).

    ``planned_samples`` is a FixedHorizon plan frozen earlier (the operator keeps the first plan it computed in
    status, so the goal does not move with control's running mean); None plans from control's current data."""
    config = config or AnalysisConfig()
    _check(variants, control, metric, guardrails, config)
    if planned_samples is not None and (isinstance(planned_samples, bool) or planned_samples < 1):
        raise StatsInputError(f"plannedSamples: must be a positive integer, got {planned_samples!r}")
    by_name = {v.name: v for v in variants}
    control_data = by_name[control]
    active = [v for v in variants if v.weight > 0]
    treatments = [v for v in active if v.name != control]

    srm_p_value = _srm_p_value(variants)
    if srm_p_value is not None and srm_p_value < config.srm_threshold:
        return _withheld(
            variants, metric, guardrails, config, state=AnalysisState.SAMPLE_RATIO_MISMATCH, srm_p_value=srm_p_value
        )

    required: float = config.minimum_samples_per_variant
    planned: int | None = None
    if config.method is Method.FIXED_HORIZON and planned_samples is not None:
        planned = max(planned_samples, config.minimum_samples_per_variant)
        required = planned
    elif config.method is Method.FIXED_HORIZON and metric.minimum_detectable_effect is not None:
        planned = planned_samples_per_variant(metric, control_data.metrics[metric.name], len(treatments), config)
        required = planned if planned is not None else math.inf
    fewest = min(v.exposures for v in active)
    progress = 0.0 if math.isinf(required) else min(1.0, fewest / required)
    if progress < 1.0:
        return _withheld(
            variants,
            metric,
            guardrails,
            config,
            state=AnalysisState.INSUFFICIENT_TRAFFIC,
            progress=progress,
            planned=planned,
            srm_p_value=srm_p_value,
        )

    primary = _compare(treatments, control_data, metric, config, config.alpha)
    p_values = primary.p_value
    adjusted = _adjusted(p_values, config) if config.method is not Method.BAYESIAN else p_values
    sign = metric.direction.sign
    if config.method is Method.BAYESIAN:
        significant = primary.probability_to_beat >= 1 - config.alpha
    else:
        significant = (adjusted < config.alpha) & (sign * primary.difference > 0)

    guard_alpha = guardrail_interval_alpha(config.method, config.alpha)
    guard_results = {
        g.name: guardrail_states(g, _compare(treatments, control_data, g, config, guard_alpha)) for g in guardrails
    }

    results: dict[str, VariantResult] = {}
    candidates: list[tuple[float, str]] = []
    for i, variant in enumerate(treatments):
        comparison = Comparison(
            difference=_interval(primary.difference[i], primary.difference_lower[i], primary.difference_upper[i]),
            lift=_interval(primary.lift[i], primary.lift_lower[i], primary.lift_upper[i]),
            p_value=_optional(p_values[i]),
            adjusted_p_value=_optional(adjusted[i]),
            probability_to_beat_control=_optional(primary.probability_to_beat[i]),
            expected_loss=_optional(primary.expected_loss[i]),
            significant=bool(significant[i]),
        )
        variant_guardrails = tuple(
            GuardrailResult(g.name, states[i], _mean(variant, g.name, g.kind), lifts[i])
            for g, (states, lifts) in ((g, guard_results[g.name]) for g in guardrails)
        )
        if (
            comparison.significant
            and comparison.difference is not None
            and all(g.state is GuardrailState.OK for g in variant_guardrails)
        ):
            candidates.append((sign * comparison.difference.estimate, variant.name))
        results[variant.name] = _describe(variant, metric, comparison, variant_guardrails)
    winner = max(candidates)[1] if candidates else None
    return Analysis(
        method=config.method,
        state=AnalysisState.REPORTED,
        progress=1.0,
        planned_samples_per_variant=planned,
        srm_p_value=srm_p_value,
        variants=tuple(
            results.get(v.name) or _describe(v, metric, None, _no_guardrails(v, guardrails)) for v in variants
        ),
        winner=winner,
    )


def _adjusted(p_values: np.ndarray, config: AnalysisConfig) -> np.ndarray:
    """The p-values after the configured multiple-comparison rule across the treatments."""
    if config.correction is Correction.HOLM:
        return frequentist.holm(p_values)
    if config.correction is Correction.BONFERRONI:
        return frequentist.bonferroni(p_values)
    return np.asarray(p_values, dtype=float)


def planned_samples_per_variant(
    metric: Metric, control: Moments, treatments: int, config: AnalysisConfig
) -> int | None:
    """Units per variant for FixedHorizon: a two-sided z-test at alpha / treatments (Bonferroni, which Holm never
    does worse than; at alpha when the correction is None) with ``config.power`` against a relative change of the MDE
    in the metric's direction.

    The baseline is control's current mean and variance (Binary: p1 = control's rate, p2 = p1 (1 +- MDE), variance
    p1 (1 - p1) + p2 (1 - p2); otherwise twice control's variance). None while no plan exists (control's mean or
    variance is 0); never below ``minimum_samples_per_variant``."""
    assert metric.minimum_detectable_effect is not None
    mean, variance = (
        float(x) for x in mean_and_variance(metric.kind, control.n, control.total, control.sum_of_squares)
    )
    if not (math.isfinite(mean) and math.isfinite(variance)) or mean == 0 or variance <= 0:
        return None
    effect = metric.minimum_detectable_effect * abs(mean)
    if metric.kind is MetricKind.BINARY:
        other = min(1.0, max(0.0, mean + metric.direction.sign * effect))
        variance_sum = mean * (1 - mean) + other * (1 - other)
        effect = abs(other - mean)
        if effect == 0:
            return None
    else:
        variance_sum = 2 * variance
    alpha = config.alpha if config.correction is Correction.NONE else config.alpha / max(1, treatments)
    if config.power <= alpha:  # a two-sided test at alpha has that much power with no data at all
        return config.minimum_samples_per_variant
    n = frequentist.samples_per_arm(effect, variance_sum, alpha, config.power)
    return max(config.minimum_samples_per_variant, math.ceil(n))


# ----------------------------------------------------------------------------------------------------------------------


def _compare(
    treatments: Sequence[VariantData],
    control: VariantData,
    metric: Metric | Guardrail,
    config: AnalysisConfig,
    alpha: float,
) -> ArmComparison:
    name = metric.name
    moments = [t.metrics[name] for t in treatments]
    c = control.metrics[name]
    return compare_arms(
        config.method,
        metric.kind,
        metric.direction,
        (
            np.array([m.n for m in moments], dtype=np.float64),
            np.array([m.total for m in moments]),
            np.array([m.sum_of_squares for m in moments]),
        ),
        (c.n, c.total, c.sum_of_squares),
        alpha=alpha,
        tuning_parameter=config.sequential_tuning_parameter,
        beta_prior=config.beta_prior,
    )


def guardrail_interval_alpha(method: Method, alpha: float) -> float:
    """The two-sided level whose interval ends are one-sided bounds at ``alpha``: 2 alpha, except for Sequential,
    whose two-sided confidence sequence at alpha already bounds each side at alpha (conservatively)."""
    return alpha if method is Method.SEQUENTIAL else 2 * alpha


def guardrail_states(guardrail: Guardrail, result: ArmComparison) -> tuple[list[GuardrailState], list[Interval | None]]:
    """Harm = the relative change in the wrong direction; compare its one-sided bounds (the ends of ``result``'s lift
    interval, computed at :func:`guardrail_interval_alpha`) with the threshold."""
    states: list[GuardrailState] = []
    lifts: list[Interval | None] = []
    for i in range(result.lift.size):
        lift = _interval(result.lift[i], result.lift_lower[i], result.lift_upper[i])
        lifts.append(lift)
        if lift is None:
            states.append(GuardrailState.INSUFFICIENT)
            continue
        if guardrail.direction is Direction.INCREASE:
            harm_lower, harm_upper = -lift.upper, -lift.lower
        else:
            harm_lower, harm_upper = lift.lower, lift.upper
        if harm_lower > guardrail.threshold:
            states.append(GuardrailState.VIOLATED)
        elif harm_upper < guardrail.threshold:
            states.append(GuardrailState.OK)
        else:
            states.append(GuardrailState.INSUFFICIENT)
    return states, lifts


def _srm_p_value(variants: Sequence[VariantData]) -> float | None:
    """Anytime-valid p-value of the exposures against the weights (`frequentist.sequential_srm_p_value`: every
    analysis may compare it with srmThreshold without raising the false alarm rate); 0 when a variant without weight
    has exposures; None before any exposure."""
    if any(v.weight == 0 and v.exposures > 0 for v in variants):
        return 0.0
    active = [v for v in variants if v.weight > 0]
    if sum(v.exposures for v in active) == 0:
        return None
    return float(frequentist.sequential_srm_p_value([v.exposures for v in active], [v.weight for v in active]))


def _withheld(
    variants: Sequence[VariantData],
    metric: Metric,
    guardrails: Sequence[Guardrail],
    config: AnalysisConfig,
    *,
    state: AnalysisState,
    srm_p_value: float | None,
    progress: float = 0.0,
    planned: int | None = None,
) -> Analysis:
    return Analysis(
        method=config.method,
        state=state,
        progress=progress,
        planned_samples_per_variant=planned,
        srm_p_value=srm_p_value,
        variants=tuple(_describe(v, metric, None, _no_guardrails(v, guardrails)) for v in variants),
        winner=None,
    )


def _no_guardrails(variant: VariantData, guardrails: Sequence[Guardrail]) -> tuple[GuardrailResult, ...]:
    return tuple(
        GuardrailResult(g.name, GuardrailState.INSUFFICIENT, _mean(variant, g.name, g.kind), None) for g in guardrails
    )


def _describe(
    variant: VariantData, metric: Metric, comparison: Comparison | None, guardrails: tuple[GuardrailResult, ...]
) -> VariantResult:
    m = variant.metrics[metric.name]
    mean, variance = mean_and_variance(metric.kind, m.n, m.total, m.sum_of_squares)
    return VariantResult(
        name=variant.name,
        exposures=variant.exposures,
        n=m.n,
        total=m.total,
        mean=_optional(mean) if m.n > 0 else None,
        variance=_optional(variance) if m.n > 1 else None,
        comparison=comparison,
        guardrails=guardrails,
    )


def _mean(variant: VariantData, name: str, kind: MetricKind) -> float | None:
    m = variant.metrics[name]
    return m.total / m.n if m.n > 0 else None


def _optional(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _interval(estimate: object, lower: object, upper: object) -> Interval | None:
    values = [float(x) for x in (estimate, lower, upper)]  # type: ignore[arg-type]
    return Interval(*values) if all(math.isfinite(x) for x in values) else None


def _check(
    variants: Sequence[VariantData],
    control: str,
    metric: Metric,
    guardrails: Sequence[Guardrail],
    config: AnalysisConfig,
) -> None:
    config.check()
    if len(variants) < 2:
        raise StatsInputError(f"variants: an experiment needs at least two variants, got {len(variants)}")
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StatsInputError(f"variants: duplicate variant names {duplicates}")
    if control not in names:
        raise StatsInputError(f"control: {control!r} is not one of the variants {names}")
    metric_names = [metric.name, *(g.name for g in guardrails)]
    if len(set(metric_names)) != len(metric_names):
        raise StatsInputError(
            f"guardrails: names must be unique and differ from the primary metric, got {metric_names}"
        )
    mde = metric.minimum_detectable_effect
    if mde is not None and not (math.isfinite(mde) and mde > 0):
        raise StatsInputError(f"metric.minimumDetectableEffect: must be a positive number, got {mde!r}")
    for g in guardrails:
        if not (math.isfinite(g.threshold) and g.threshold >= 0):
            raise StatsInputError(f"guardrails[{g.name}].threshold: must be a number >= 0, got {g.threshold!r}")
    kinds = {metric.name: metric.kind} | {g.name: g.kind for g in guardrails}
    for v in variants:
        where = f"variants[{v.name}]"
        if not (math.isfinite(v.weight) and v.weight >= 0):
            raise StatsInputError(f"{where}.weight: must be a number >= 0, got {v.weight!r}")
        if isinstance(v.exposures, bool) or not isinstance(v.exposures, int) or v.exposures < 0:
            raise StatsInputError(f"{where}.exposures: must be an integer >= 0, got {v.exposures!r}")
        unknown = sorted(set(v.metrics) - set(kinds))
        if unknown:
            raise StatsInputError(f"{where}.metrics: unknown metrics {unknown}; known: {metric_names}")
        for name, kind in kinds.items():
            if name not in v.metrics:
                raise StatsInputError(f"{where}.metrics: missing {name!r}")
            moments = v.metrics[name]
            moments.check(f"{where}.metrics[{name}]", kind)
            if moments.n > v.exposures:
                raise StatsInputError(
                    f"{where}.metrics[{name}].n: {moments.n} units measured but only {v.exposures} exposed"
                )
    if by_weight := [v.name for v in variants if v.name == control and v.weight <= 0]:
        raise StatsInputError(f"variants[{by_weight[0]}].weight: control needs a weight above 0")
