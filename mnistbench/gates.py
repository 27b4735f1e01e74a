"""``--fail METRIC:THRESHOLD``: how much worse a metric may get before a comparison fails.

One rule per ``--fail``, read by :meth:`FailRule.parse`, shared by ``mnistbench compare``
and ``mnistbench ab``: which metrics can be gated (:func:`gated_metrics`), whether a
change exceeds a rule (:meth:`FailRule.exceeded`), and the rule as the user wrote it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mnistbench import format as fmt
from mnistbench.columns import COMPARED, HIGHER, LOWER, in_view, metric, normalized
from mnistbench.errors import ConfigError


def compared_metrics() -> list[str]:
    """The names of the metrics compare tests, in ``runs.csv`` order."""
    return [column.name for column in in_view(COMPARED)]


def gated_metrics() -> list[str]:
    """The metrics ``--fail`` rules can name: the compared ones, then their normalized forms."""
    compared = compared_metrics()
    return [*compared, *filter(None, map(normalized, compared))]


@dataclass(frozen=True)
class FailRule:
    """One ``--fail METRIC:THRESHOLD`` rule: how much worse a metric may get.

    The threshold is a magnitude in the metric's bad direction (``Column.better``);
    its sign is ignored, so ``test_accuracy:-0.005`` and ``test_accuracy:0.005``
    are the same rule. With ``b`` and ``c`` the baseline and candidate medians:

    - relative, ``fit_seconds:10%``: exceeded when the candidate is worse by more
      than 10 % of the baseline, i.e. ``c - b > 0.10 * |b|`` for a lower-is-better
      metric and ``b - c > 0.10 * |b|`` for a higher-is-better one
      (``inference_samples_per_second:10%`` fails on a drop of more than 10 %);
    - absolute, ``test_accuracy:-0.005``: exceeded when the candidate is worse by
      more than 0.005 in the column's unit, i.e. ``b - c > 0.005`` for a
      higher-is-better metric; ``latency_ms:0.5`` is exceeded when ``c - b > 0.5``.

    An improvement never exceeds a rule. Whether an exceeded rule fails depends on
    significance; see :func:`compare_runs`.

    :param metric: one of :func:`gated_metrics`: a compared metric or its normalized form.
    :param threshold: the allowed worsening, positive: a fraction of the baseline
        median (0.10 for "10%") when ``relative``, else in the metric's unit.
    :param relative: True for a percentage, False for an absolute amount.
    """

    metric: str
    threshold: float
    relative: bool

    @classmethod
    def parse(cls, text: str) -> FailRule:
        """A rule from ``METRIC:THRESHOLD`` text: ``fit_seconds:10%``, ``test_accuracy:-0.005``.

        :raises ConfigError: one line naming what is wrong: no colon, no metric or
            an unknown one (listing the known ones), no threshold or one that is
            not a finite number or percentage, a zero threshold, a negative percentage.
        """
        quoted = f'--fail "{text}"'
        name, colon, threshold_text = text.partition(":")
        name, threshold_text = name.strip(), threshold_text.strip()
        if not colon:
            raise ConfigError(
                f"{quoted}: expected METRIC:THRESHOLD, e.g. fit_seconds:10% or test_accuracy:-0.005"
            )
        if not name:
            raise ConfigError(f"{quoted}: missing metric before the colon, e.g. fit_seconds:10%")
        known = gated_metrics()
        if name not in known:
            raise ConfigError(f'{quoted}: unknown metric "{name}"; known: {", ".join(known)}')
        if not threshold_text:
            raise ConfigError(f"{quoted}: missing threshold after the colon, e.g. {name}:10%")
        relative = threshold_text.endswith("%")
        number_text = threshold_text.removesuffix("%").strip() if relative else threshold_text
        try:
            number = float(number_text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(
                f'{quoted}: threshold "{threshold_text}" is not a number or a percentage, '
                "e.g. 10% or 0.5"
            )
        if relative and number <= 0:
            raise ConfigError(
                f"{quoted}: a percentage must be above 0%: it is how much worse "
                f"{name} may get, e.g. {name}:10%"
            )
        if number == 0:
            raise ConfigError(
                f"{quoted}: the threshold must not be 0: it is how much worse {name} may get"
            )
        return cls(name, number / 100 if relative else abs(number), relative)

    def __str__(self) -> str:
        """The rule as ``--fail`` text, signed in the bad direction when absolute.

        ``fit_seconds:10%``, ``test_accuracy:-0.005``, ``latency_ms:+0.5``;
        :meth:`parse` reads it back.
        """
        if self.relative:
            return f"{self.metric}:{fmt.threshold(self.threshold * 100)}%"
        sign = "-" if metric(self.metric).better == HIGHER else "+"
        return f"{self.metric}:{sign}{fmt.threshold(abs(self.threshold))}"

    def limit(self) -> str:
        """The allowed worsening for messages: ``10%``, ``0.005``, ``0.5 ms``."""
        if self.relative:
            return f"{fmt.threshold(self.threshold * 100)}%"
        unit = metric(self.metric).unit
        return fmt.threshold(abs(self.threshold)) + (f" {unit}" if unit else "")

    def exceeded(self, baseline_median: float, candidate_median: float) -> bool:
        """Whether the candidate median is worse than the baseline by more than allowed."""
        if math.isnan(baseline_median) or math.isnan(candidate_median):
            return False
        if metric(self.metric).better == LOWER:
            worsening = candidate_median - baseline_median
        else:
            worsening = baseline_median - candidate_median
        # Written as a product, not a ratio: a zero baseline needs no special case.
        allowed = self.threshold * abs(baseline_median) if self.relative else abs(self.threshold)
        return worsening > allowed
