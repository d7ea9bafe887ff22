"""What an analysis reads: per-variant sufficient statistics and the experiment's statistical settings.

Everything here is plain, frozen and validated on construction, so a status that stores ``n``, ``sum`` and
``sum_of_squares`` per variant and metric can recompute every result. The vocabulary (and the string values of the
enums) follows ``api/experiment.py``; the module does not import it, so it stays usable without pydantic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class StatsInputError(ValueError):
    """Bad input to the statistics: the message names the field and the problem."""


class MetricKind(StrEnum):
    BINARY = "Binary"
    CONTINUOUS = "Continuous"
    COUNT = "Count"


class Direction(StrEnum):
    INCREASE = "Increase"
    DECREASE = "Decrease"

    @property
    def sign(self) -> float:
        """+1 when larger is better, -1 when smaller is better."""
        return 1.0 if self is Direction.INCREASE else -1.0


class Method(StrEnum):
    FIXED_HORIZON = "FixedHorizon"
    SEQUENTIAL = "Sequential"
    BAYESIAN = "Bayesian"


class Correction(StrEnum):
    """The multiple-comparison rule across the treatments (``spec.analysis.multipleComparisons``)."""

    HOLM = "Holm"
    BONFERRONI = "Bonferroni"
    NONE = "None"


def _finite(where: str, value: float) -> None:
    if not math.isfinite(value):
        raise StatsInputError(f"{where}: must be a finite number, got {value!r}")


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one metric in one variant: the mean is over ``n`` units.

    ``n`` is normally the variant's exposures: an exposed unit without an outcome counts as 0 (no conversion, no
    revenue, no events). ``total`` is the sum of the per-unit values and ``sum_of_squares`` the sum of their squares.
    """

    n: int
    total: float
    sum_of_squares: float

    def check(self, where: str, kind: MetricKind) -> None:
        """Raise :class:`StatsInputError` naming ``where`` when these cannot be sums of ``n`` values of ``kind``."""
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 0:
            raise StatsInputError(f"{where}.n: must be an integer >= 0, got {self.n!r}")
        _finite(f"{where}.sum", self.total)
        _finite(f"{where}.sumOfSquares", self.sum_of_squares)
        if self.sum_of_squares < 0:
            raise StatsInputError(f"{where}.sumOfSquares: must be >= 0, got {self.sum_of_squares!r}")
        if kind is MetricKind.BINARY:
            if not 0 <= self.total <= self.n or self.total != round(self.total):
                raise StatsInputError(f"{where}.sum: a Binary metric counts units, 0..{self.n}; got {self.total!r}")
            if not math.isclose(self.sum_of_squares, self.total, rel_tol=1e-9, abs_tol=1e-9):
                raise StatsInputError(
                    f"{where}.sumOfSquares: a Binary metric's values are 0 or 1, so it must equal sum "
                    f"({self.total!r}); got {self.sum_of_squares!r}"
                )
        # Cauchy-Schwarz: n * sum(x^2) >= (sum x)^2, with room for rounding in the stored sums.
        if self.n * self.sum_of_squares < self.total**2 * (1 - 1e-9) - 1e-9:
            raise StatsInputError(
                f"{where}: sum {self.total!r} and sumOfSquares {self.sum_of_squares!r} cannot come from {self.n} "
                "values (n * sumOfSquares < sum^2)"
            )
        if kind is MetricKind.COUNT and self.total < 0:
            raise StatsInputError(f"{where}.sum: a Count metric cannot be negative, got {self.total!r}")

    @classmethod
    def of(cls, values: object) -> Moments:
        """The moments of a sequence of per-unit values (tests and examples; the runtime keeps running sums)."""
        import numpy as np  # noqa: PLC0415  (numpy is loaded only where arrays are computed: croupier.stats)

        array = np.asarray(values, dtype=float)
        return cls(n=int(array.size), total=float(array.sum()), sum_of_squares=float((array**2).sum()))


@dataclass(frozen=True)
class Metric:
    """The primary metric. ``minimum_detectable_effect`` is relative (0.02 = 2% of control's mean)."""

    name: str
    kind: MetricKind
    direction: Direction = Direction.INCREASE
    minimum_detectable_effect: float | None = None


@dataclass(frozen=True)
class Guardrail:
    """A metric no variant may harm by more than ``threshold``, relative to control (0.05 = 5% worse)."""

    name: str
    kind: MetricKind
    direction: Direction
    threshold: float


@dataclass(frozen=True)
class VariantData:
    """One variant: its weight (percent of units), its exposures, and the moments of every metric by name."""

    name: str
    weight: float
    exposures: int
    metrics: Mapping[str, Moments] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisConfig:
    """Statistical settings (``spec.analysis``).

    ``sequential_tuning_parameter`` is the total sample size (both arms of one comparison) at which the Sequential
    confidence sequence is tightest; ``beta_prior`` is the Beta(a, b) prior of every Binary variant's rate.
    """

    method: Method = Method.SEQUENTIAL
    alpha: float = 0.05
    power: float = 0.8
    minimum_samples_per_variant: int = 100
    srm_threshold: float = 0.001
    sequential_tuning_parameter: float = 5000.0
    beta_prior: tuple[float, float] = (1.0, 1.0)
    correction: Correction = Correction.HOLM

    def check(self) -> None:
        """Raise :class:`StatsInputError` naming the first setting out of range."""
        if not 0 < self.alpha < 0.5:
            raise StatsInputError(f"alpha: must be in (0, 0.5), got {self.alpha!r}")
        if not 0 < self.power < 1:
            raise StatsInputError(f"power: must be in (0, 1), got {self.power!r}")
        if self.minimum_samples_per_variant < 1:
            raise StatsInputError(f"minimumSamplesPerVariant: must be >= 1, got {self.minimum_samples_per_variant!r}")
        if not 0 < self.srm_threshold < 0.5:
            raise StatsInputError(f"srmThreshold: must be in (0, 0.5), got {self.srm_threshold!r}")
        if not (math.isfinite(self.sequential_tuning_parameter) and self.sequential_tuning_parameter > 0):
            raise StatsInputError(
                f"sequentialTuningParameter: must be a positive number, got {self.sequential_tuning_parameter!r}"
            )
        a, b = self.beta_prior
        if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0):
            raise StatsInputError(f"betaPrior: both parameters must be positive, got {self.beta_prior!r}")
