"""The statistics behind ``ab``, ``compare`` and ``history`` on synthetic data, where the truth
is known: false alarms at the nominal rate, the stated power, intervals that cover."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mnistbench.history import step_intervals
from mnistbench.stats import ALPHA, holm, paired_ratio, pairs_needed, ratio_of_medians

TRIALS = 2000


def pairs(rng, n: int, effect: float, noise: float, drift: float = 0.3):
    """``n`` pairs whose runs share the machine's state of the moment (a log-normal factor
    of spread ``drift``, large, as a shared machine's), the head ``effect`` slower, each
    run with its own log-normal noise so the pair's log-ratio spreads by ``noise``."""
    machine = np.exp(rng.normal(0, drift, n))
    own = noise / math.sqrt(2)
    base = 10.0 * machine * np.exp(rng.normal(0, own, n))
    head = 10.0 * (1 + effect) * machine * np.exp(rng.normal(0, own, n))
    return base, head


def binomial_bounds(rate: float, trials: int, sigmas: float = 4.0) -> tuple[float, float]:
    spread = sigmas * math.sqrt(rate * (1 - rate) / trials)
    return rate - spread, rate + spread


def test_a_a_pairs_give_false_alarms_at_the_nominal_rate_whatever_the_machine_drift():
    rng = np.random.default_rng(1)
    alarms = covered = 0
    for _ in range(TRIALS):
        ratio = paired_ratio(*pairs(rng, 10, 0.0, 0.1))
        alarms += ratio.p_value < ALPHA
        covered += ratio.low <= 1.0 <= ratio.high
    low, high = binomial_bounds(ALPHA, TRIALS)
    assert low <= alarms / TRIALS <= high
    # The 95% interval covers the true ratio (1) as often as it says.
    low, high = binomial_bounds(0.95, TRIALS)
    assert low <= covered / TRIALS <= high


@pytest.mark.parametrize(
    "n, noise, stated",
    # The power each design has (two-sided, at ALPHA): 10 pairs at a spread of 0.1 find a
    # 10% slowdown 3 times in 4; 10 at 0.07 or 20 at 0.1, 19 in 20 or more; 5 at 0.07,
    # under 2 in 3 (the precision notes' one-sided normal approximation is kinder).
    [(10, 0.1, 0.765), (5, 0.07, 0.631), (10, 0.07, 0.968), (20, 0.1, 0.981)],
)
def test_a_10_percent_slowdown_is_found_at_the_stated_power(n, noise, stated):
    # The stated rate: a two-sided paired t-test at ALPHA against a shift of ln 1.1 with
    # the log-ratios spreading by `noise` has the power of the noncentral t.
    shift = math.log(1.1)
    critical = scipy_stats.t.ppf(1 - ALPHA / 2, n - 1)
    noncentrality = shift / (noise / math.sqrt(n))
    power = 1 - scipy_stats.nct.cdf(critical, n - 1, noncentrality)
    rng = np.random.default_rng(2)
    found = sum(
        (r := paired_ratio(*pairs(rng, n, 0.10, noise))).p_value < ALPHA and r.ratio > 1
        for _ in range(TRIALS)
    )
    assert power == pytest.approx(stated, abs=0.001)
    low, high = binomial_bounds(power, TRIALS)
    assert low <= found / TRIALS <= high


def test_unpaired_runs_on_a_drifting_machine_miss_what_pairs_find():
    # Why pairs: the same runs, their pairing thrown away, tested as two samples.
    rng = np.random.default_rng(3)
    paired = unpaired = 0
    for _ in range(500):
        base, head = pairs(rng, 10, 0.10, 0.1)
        paired += paired_ratio(base, head).p_value < ALPHA
        unpaired += scipy_stats.mannwhitneyu(base, head).pvalue < ALPHA
    assert paired / 500 > 0.6 and unpaired / 500 < 0.25


def test_pairs_needed_is_the_smallest_count_whose_interval_fits_the_margin():
    rng = np.random.default_rng(4)
    base, head = pairs(rng, 6, 0.0, 0.1)
    needed = pairs_needed(base, head, 0.05)
    sd = np.std(np.log(head / base), ddof=1)

    def half_width(n: int) -> float:
        return scipy_stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)

    assert half_width(needed) <= math.log(1.05) < half_width(needed - 1)
    assert pairs_needed(base[:1], head[:1], 0.05) is None


def test_holm_adjusts_as_the_step_down_procedure_does():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)
    assert holm([]) == []
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # 2 × 0.8 capped at 1, and never decreasing


def test_holm_keeps_the_family_wise_false_alarm_rate_of_many_gates():
    # Twenty gated metrics with no change at all: unadjusted, most trials raise an alarm.
    rng = np.random.default_rng(5)
    raw = adjusted = 0
    for _ in range(TRIALS):
        p_values = rng.uniform(size=20)
        raw += (p_values < ALPHA).any()
        adjusted += (np.array(holm(list(p_values))) < ALPHA).any()
    assert raw / TRIALS > 0.55
    assert adjusted / TRIALS <= binomial_bounds(ALPHA, TRIALS)[1]


def test_the_bootstrap_ratio_of_medians_is_seeded_and_excludes_1_for_separated_sides():
    base, head = [10.0, 10.5, 9.8, 10.2, 10.1], [12.0, 12.3, 11.9, 12.4, 12.1]
    ratio = ratio_of_medians(base, head)
    assert ratio.ratio == pytest.approx(12.1 / 10.1)
    assert 1.0 < ratio.low <= ratio.ratio <= ratio.high
    assert ratio_of_medians(base, head) == ratio  # the same runs, the same interval
    alone = ratio_of_medians([10.0], [12.0])
    assert alone.ratio == pytest.approx(1.2) and math.isnan(alone.low)


def test_the_bootstrap_interval_covers_the_true_ratio_of_medians_most_of_the_time():
    # Percentile bootstraps of 5 runs a side are known to undercover; the interval is
    # still far from useless. Stated: at least 80% here, over log-normal runs.
    rng = np.random.default_rng(6)
    covered = 0
    for _ in range(400):
        base = np.exp(rng.normal(math.log(10), 0.1, 5))
        head = np.exp(rng.normal(math.log(11), 0.1, 5))
        ratio = ratio_of_medians(list(base), list(head))
        covered += ratio.low <= 1.1 <= ratio.high
    assert covered / 400 >= 0.80


def test_a_history_steps_interval_holds_its_size():
    rng = np.random.default_rng(7)
    inside = 0
    for _ in range(200):
        values = list(10 * np.exp(rng.normal(0, 0.03, 12)))
        values[6:] = [v * 1.4 for v in values[6:]]
        # The interval of the true step (detection itself is tests/test_history.py's).
        low, high = step_intervals(values, [6])[6]
        assert 1.0 < low < high
        inside += low <= 1.4 <= high
    assert inside / 200 >= 0.9
    # A metric that can be 0 or below has no ratio to bound.
    assert all(math.isnan(v) for v in step_intervals([1.0, 2.0, -1.0, 3.0], [2])[2])
