"""Comparing two output directories: is the candidate faster, slower, or the same?

The library behind ``mnistbench compare BASELINE_DIR CANDIDATE_DIR [--fail RULE ...]``.
:func:`compare_runs` takes the two ``runs.csv`` DataFrames and returns one row per
configuration, backend and metric; :func:`regressions` names the rows that fail a
``--fail`` rule; :func:`write_compare` writes ``compare.csv`` and ``compare.png``.

Only runs with status ``ok`` count. A configuration is a ``config_id`` (an
architecture plus its non-default options) on one ``backend``; its rows are
repeats with different seeds. Each side is summarized by its median, and the two
sides are compared by their ratio and, when both have at least three repeats, by a
two-sided Mann-Whitney U test at :data:`ALPHA`. With fewer repeats the comparison
says it cannot tell: two numbers are not a distribution.

Nothing heavy is imported at module level (pandas, scipy and matplotlib are imported
by the functions that use them), so that ``mnistbench --help`` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench.atomic import atomic_writer
from mnistbench.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The compared ``runs.csv`` columns and the direction that is better.
METRICS: dict[str, str] = {
    "fit_seconds": "lower",
    "steady_epoch_seconds": "lower",
    "first_epoch_seconds": "lower",
    "time_to_accuracy_seconds": "lower",
    "train_samples_per_second": "higher",
    "inference_samples_per_second": "higher",
    "latency_ms": "lower",
    "latency_p95_ms": "lower",
    "test_accuracy": "higher",
    "test_loss": "lower",
    "peak_memory_mb": "lower",
}

#: Significance level of the Mann-Whitney U test.
ALPHA = 0.05
#: Repeats needed on each side before the test is run.
MIN_REPEATS = 3

# The verdicts, one per row of the table.
IMPROVED = "improved"
REGRESSED = "regressed"
NO_CHANGE = "no significant change"
CANNOT_TELL = "cannot tell (n<3)"
ONLY_IN_BASELINE = "only in baseline"
ONLY_IN_CANDIDATE = "only in candidate"

COMPARE_CSV = "compare.csv"
COMPARE_PNG = "compare.png"

#: Columns of :func:`compare_runs`'s table and of ``compare.csv``, in order.
COMPARE_COLUMNS: list[str] = [
    "config_id",
    "architecture",
    "backend",
    "metric",
    "better",
    "baseline_median",
    "candidate_median",
    "ratio",
    "baseline_n",
    "candidate_n",
    "p_value",
    "significant",
    "verdict",
    "regression",
    "failed_rule",
]

# The unit each metric's column is in, for human-readable lines.
_UNITS: dict[str, str] = {
    "fit_seconds": "s",
    "steady_epoch_seconds": "s",
    "first_epoch_seconds": "s",
    "time_to_accuracy_seconds": "s",
    "train_samples_per_second": "samples/s",
    "inference_samples_per_second": "samples/s",
    "latency_ms": "ms",
    "latency_p95_ms": "ms",
    "test_accuracy": "",
    "test_loss": "",
    "peak_memory_mb": "MB",
}


def _number(value: float) -> str:
    """A threshold as the user would type it: ``10``, ``0.005``, ``2.5``."""
    # Rounding first hides float noise such as 0.1 * 100 == 10.000000000000002.
    return f"{round(value, 12):.12g}"


# --- --fail rules ---------------------------------------------------------------------


@dataclass(frozen=True)
class FailRule:
    """One ``--fail METRIC:THRESHOLD`` rule: how much worse a metric may get.

    The threshold is a magnitude in the metric's bad direction (see :data:`METRICS`);
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

    :param metric: a key of :data:`METRICS`.
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
        metric, colon, threshold_text = text.partition(":")
        metric, threshold_text = metric.strip(), threshold_text.strip()
        if not colon:
            raise ConfigError(
                f"{quoted}: expected METRIC:THRESHOLD, e.g. fit_seconds:10% or test_accuracy:-0.005"
            )
        if not metric:
            raise ConfigError(f"{quoted}: missing metric before the colon, e.g. fit_seconds:10%")
        if metric not in METRICS:
            raise ConfigError(f'{quoted}: unknown metric "{metric}"; known: {", ".join(METRICS)}')
        if not threshold_text:
            raise ConfigError(f"{quoted}: missing threshold after the colon, e.g. {metric}:10%")
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
                f"{metric} may get, e.g. {metric}:10%"
            )
        if number == 0:
            raise ConfigError(
                f"{quoted}: the threshold must not be 0: it is how much worse {metric} may get"
            )
        return cls(metric, number / 100 if relative else abs(number), relative)

    def __str__(self) -> str:
        """The rule as ``--fail`` text, signed in the bad direction when absolute.

        ``fit_seconds:10%``, ``test_accuracy:-0.005``, ``latency_ms:+0.5``;
        :meth:`parse` reads it back.
        """
        if self.relative:
            return f"{self.metric}:{_number(self.threshold * 100)}%"
        sign = "-" if METRICS[self.metric] == "higher" else "+"
        return f"{self.metric}:{sign}{_number(abs(self.threshold))}"

    def limit(self) -> str:
        """The allowed worsening for messages: ``10%``, ``0.005``, ``0.5 ms``."""
        if self.relative:
            return f"{_number(self.threshold * 100)}%"
        unit = _UNITS.get(self.metric, "")
        return _number(abs(self.threshold)) + (f" {unit}" if unit else "")

    def exceeded(self, baseline_median: float, candidate_median: float) -> bool:
        """Whether the candidate median is worse than the baseline by more than allowed."""
        if math.isnan(baseline_median) or math.isnan(candidate_median):
            return False
        if METRICS[self.metric] == "lower":
            worsening = candidate_median - baseline_median
        else:
            worsening = baseline_median - candidate_median
        # Written as a product, not a ratio: a zero baseline needs no special case.
        allowed = self.threshold * abs(baseline_median) if self.relative else abs(self.threshold)
        return worsening > allowed


# --- the comparison -------------------------------------------------------------------


def _successful(runs: pd.DataFrame, only_ok: bool = True) -> pd.DataFrame:
    """The ``ok`` runs (or all), grouping keys as clean strings in ``_config``, ``_backend``."""
    import pandas as pd

    ok = runs[runs["status"].astype(str).str.strip().eq("ok")] if only_ok else runs
    ok = ok.copy()

    def text(column: str) -> pd.Series:
        if column not in ok.columns:
            return pd.Series("", index=ok.index, dtype=object)
        values = ok[column]
        return values.astype(object).where(values.notna(), "").astype(str).str.strip()

    architecture = text("architecture")
    config = text("config_id")
    # Older runs.csv files have no config_id: the architecture is the best key they offer.
    ok["_config"] = config.where(config != "", architecture)
    ok["_architecture"] = architecture
    ok["_backend"] = text("backend")
    return ok


def _values(runs: pd.DataFrame, metric: str) -> pd.Series:
    import pandas as pd

    return pd.to_numeric(runs[metric], errors="coerce").astype(float).dropna()


def _median(values: pd.Series) -> float:
    return float(values.median()) if len(values) else math.nan


def compare_runs(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    rules: Sequence[FailRule] = (),
    *,
    require_significance: bool = True,
) -> pd.DataFrame:
    """Compare two sets of runs: one row per (config_id, backend, metric).

    Rows come in the baseline's order of configurations, then the candidate's new
    ones, each with the metrics in :data:`METRICS` order. A metric is compared only
    when both DataFrames have its column (older ``runs.csv`` files lack some), and
    gets a row only when one side has values for it; failed runs and empty cells
    are left out.

    Columns (:data:`COMPARE_COLUMNS`):

    - ``config_id``, ``architecture``, ``backend`` ("" when unknown), ``metric``,
      ``better``: "lower" or "higher";
    - ``baseline_median``, ``candidate_median``: in the unit of the metric's column;
      ``ratio``: candidate / baseline (NaN when either is missing or the baseline is 0);
    - ``baseline_n``, ``candidate_n``: the number of values behind each median;
    - ``p_value``: two-sided Mann-Whitney U (scipy's default method: exact without
      ties, else the normal approximation) when both sides have at least
      :data:`MIN_REPEATS` values, else NaN; ``significant``: ``p_value < ALPHA``,
      missing (``<NA>``) when not tested;
    - ``verdict``: "improved" or "regressed" (significant, by the direction of the
      medians), "no significant change", "cannot tell (n<3)", "only in baseline"
      or "only in candidate" (the other side has no value: the configuration is
      missing there, all its runs failed, or the metric was not measured);
    - ``regression``: True when a rule fails; ``failed_rule``: the failing rules as
      ``--fail`` text, "; "-separated, "" when none.

    A rule on the row's metric fails when :meth:`FailRule.exceeded` and:

    - when tested (n >= 3 on both sides) and ``require_significance``: the change
      is also significant. Noise that happens to move a median never fails;
    - when not tested (n < 3 on either side): on the threshold alone, so that
      single-repeat sweeps are still gated; :func:`regressions` says that
      significance could not be told. More repeats make the gate stricter about
      noise, never looser about real slowdowns;
    - with ``require_significance=False``: on the threshold alone, always.

    Rows present on one side only never fail a rule.
    """
    import pandas as pd

    base, cand = _successful(baseline), _successful(candidate)
    tried = _successful(candidate, only_ok=False)
    # Configurations the candidate ran, successfully or not: one that only failed is gated.
    attempted = set(zip(tried["_config"], tried["_backend"], strict=True))
    metrics = [m for m in METRICS if m in baseline.columns and m in candidate.columns]
    keys = list(
        dict.fromkeys(
            [
                *zip(base["_config"], base["_backend"], strict=True),
                *zip(cand["_config"], cand["_backend"], strict=True),
            ]
        )
    )
    rows: list[dict[str, Any]] = []
    for config, backend in keys:
        base_runs = base[(base["_config"] == config) & (base["_backend"] == backend)]
        cand_runs = cand[(cand["_config"] == config) & (cand["_backend"] == backend)]
        architecture = pd.concat([base_runs["_architecture"], cand_runs["_architecture"]]).iloc[0]
        for metric in metrics:
            b, c = _values(base_runs, metric), _values(cand_runs, metric)
            if b.empty and c.empty:
                continue
            rows.append(
                _compare_metric(
                    config,
                    architecture,
                    backend,
                    metric,
                    b,
                    c,
                    rules if (config, backend) in attempted else (),
                    require_significance,
                )
            )
    table = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    table["significant"] = table["significant"].astype("boolean")
    table["regression"] = table["regression"].astype(bool)
    for column in ("baseline_n", "candidate_n"):
        table[column] = table[column].astype(int)
    for column in ("baseline_median", "candidate_median", "ratio", "p_value"):
        table[column] = table[column].astype(float)
    return table


def _compare_metric(
    config: str,
    architecture: str,
    backend: str,
    metric: str,
    baseline: pd.Series,
    candidate: pd.Series,
    rules: Sequence[FailRule],
    require_significance: bool,
) -> dict[str, Any]:
    b_median, c_median = _median(baseline), _median(candidate)
    better = METRICS[metric]
    row: dict[str, Any] = {
        "config_id": config,
        "architecture": architecture,
        "backend": backend,
        "metric": metric,
        "better": better,
        "baseline_median": b_median,
        "candidate_median": c_median,
        "ratio": c_median / b_median if b_median and not math.isnan(b_median) else math.nan,
        "baseline_n": len(baseline),
        "candidate_n": len(candidate),
        "p_value": math.nan,
        "significant": None,
        "verdict": "",
        "regression": False,
        "failed_rule": "",
    }
    if candidate.empty:
        row["verdict"] = ONLY_IN_BASELINE
        # A configuration that no longer produces a result is the worst regression.
        failed = [str(r) for r in rules if r.metric == metric]
        if failed and not baseline.empty:
            row["regression"], row["failed_rule"] = True, "; ".join(failed)
        return row
    if baseline.empty:
        row["verdict"] = ONLY_IN_CANDIDATE
        return row

    tested = len(baseline) >= MIN_REPEATS and len(candidate) >= MIN_REPEATS
    if tested:
        from scipy.stats import mannwhitneyu

        p_value = float(mannwhitneyu(baseline, candidate, alternative="two-sided").pvalue)
        # Identical samples can give NaN; that is no evidence of a change.
        significant = not math.isnan(p_value) and p_value < ALPHA
        row["p_value"], row["significant"] = p_value, significant
        worse = c_median > b_median if better == "lower" else c_median < b_median
        if not significant or c_median == b_median:
            row["verdict"] = NO_CHANGE
        else:
            row["verdict"] = REGRESSED if worse else IMPROVED
    else:
        row["verdict"] = CANNOT_TELL

    gate = not (tested and require_significance) or row["verdict"] == REGRESSED
    failed = [str(r) for r in rules if r.metric == metric and r.exceeded(b_median, c_median)]
    if gate and failed:
        row["regression"], row["failed_rule"] = True, "; ".join(failed)
    return row


# --- human-readable lines -------------------------------------------------------------


def _format(metric: str, value: float, signed: bool = False) -> str:
    """A value of ``metric`` with its unit: ``12.3 s``, ``41,200 samples/s``, ``0.9812``."""
    sign = "+" if signed else ""
    unit = _UNITS.get(metric, "")
    if unit == "s":
        digits = 2 if abs(value) < 10 else (1 if abs(value) < 100 else 0)
        return f"{value:{sign}.{digits}f} s"
    if unit == "samples/s":
        return f"{value:{sign},.0f} samples/s"
    if unit == "ms":
        return f"{value:{sign}.3g} ms"
    if unit == "MB":
        return f"{value:{sign},.1f} MB"
    return f"{value:{sign}.4f}"


def _p_text(p_value: float) -> str:
    return "p<0.001" if p_value < 0.001 else f"p={p_value:.2g}"


def _labels(table: pd.DataFrame) -> list[str]:
    """``dnn-spe32`` per row, with `` (jax)`` when the table holds several backends."""
    backends = {b for b in table["backend"] if b}
    return [
        f"{config} ({backend})" if len(backends) > 1 and backend else str(config)
        for config, backend in zip(table["config_id"], table["backend"], strict=True)
    ]


def regressions(table: pd.DataFrame) -> list[str]:
    """One line per failing rule of a :func:`compare_runs` table, in table order.

    ``dnn fit_seconds: 10.0 s → 12.0 s (+20.0%, p=0.0079) exceeds 10%``.
    The change is relative for a percentage rule and absolute otherwise; when the
    rule failed without a test, the p-value is replaced by
    ``n=2 vs 2: significance cannot be told``. Empty when nothing failed.
    """
    lines = []
    failing = table["regression"].astype(bool)
    labels = [label for label, fails in zip(_labels(table), failing, strict=True) if fails]
    for label, (_, row) in zip(labels, table[failing].iterrows(), strict=True):
        metric = row["metric"]
        b, c = row["baseline_median"], row["candidate_median"]
        if row["candidate_n"] == 0:
            lines.append(
                f"{label} {metric}: {_format(metric, b)} → no successful candidate run; "
                f"fails {row['failed_rule']}"
            )
            continue
        if math.isnan(row["p_value"]):
            evidence = f"n={row['baseline_n']} vs {row['candidate_n']}: significance cannot be told"
        else:
            evidence = _p_text(row["p_value"])
        for text in str(row["failed_rule"]).split("; "):
            rule = FailRule.parse(text)
            if rule.relative:
                change = f"{(c - b) / abs(b) * 100:+.1f}%" if b else "from 0"
            else:
                change = _format(metric, c - b, signed=True)
            lines.append(
                f"{label} {metric}: {_format(metric, b)} → {_format(metric, c)} "
                f"({change}, {evidence}) exceeds {rule.limit()}"
            )
    return lines


# --- compare.csv and compare.png ------------------------------------------------------

#: The metrics plotted in ``compare.png``, one panel each, with their panel titles.
PLOTTED_METRICS: dict[str, str] = {
    "fit_seconds": "Training time",
    "inference_samples_per_second": "Inference throughput",
    "test_accuracy": "Test accuracy",
    "peak_memory_mb": "Peak memory",
}

_VERDICT_COLORS: dict[str, str] = {
    IMPROVED: "#2e7d32",
    REGRESSED: "#c62828",
    NO_CHANGE: "#9e9e9e",
    CANNOT_TELL: "#cfcfcf",
}
# Layout of compare.png in inches: two rows of two panels; each panel is a bar
# axes plus a column of notes beside it, so labels never collide with bars.
_DPI = 120
_BARS_WIDTH_IN = 4.2
_NOTES_WIDTH_IN = 2.0
_ROW_IN = 0.38  # per configuration
_PANEL_EXTRA_IN = 1.1  # title and x axis of one panel
_HEADER_IN = 1.3  # figure title and legend
_CHAR_IN = 0.085  # rough width of one character of a y label at 10 pt


def write_compare(table: pd.DataFrame, output_dir: Path) -> list[Path]:
    """Write ``compare.csv`` (the table as is) and ``compare.png`` into ``output_dir``.

    Each file is replaced atomically. ``compare.png`` has one panel per
    :data:`PLOTTED_METRICS` key with a horizontal bar per configuration: the
    candidate / baseline ratio of medians, drawn from the line at 1.0 and coloured
    by verdict (green improved, red regressed, grey no significant change, light
    grey cannot tell). Each bar is labelled with its change and p-value, or with
    ``n<3``; a failing ``--fail`` rule adds ``FAILS <rule>``.

    :returns: the paths written, CSV first.
    """
    output_dir = Path(output_dir)
    csv_path = output_dir / COMPARE_CSV
    with atomic_writer(csv_path, "w") as handle:
        table.to_csv(handle, index=False, lineterminator="\n")
    png_path = output_dir / COMPARE_PNG
    _plot(table, png_path)
    return [csv_path, png_path]


def _plot(table: pd.DataFrame, path: Path) -> None:
    # A bare Figure renders through Agg on savefig without pyplot, so no global
    # backend is switched under a caller who uses pyplot (see report.py).
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    configs = list(dict.fromkeys(zip(table["config_id"], table["backend"], strict=True)))
    if not configs:
        # A notice rather than no file: a stale compare.png would contradict compare.csv.
        fig = Figure(figsize=(9.0, 3.0), dpi=_DPI)
        fig.text(
            0.5,
            0.5,
            "Nothing to compare: neither side has a successful run\nwith a compared metric.",
            ha="center",
            va="center",
            fontsize=12,
        )
        _save(fig, path)
        return
    labels = _config_labels(configs)
    longest = max((len(label) for label in labels), default=10)
    width = longest * _CHAR_IN + 0.4 + 2 * (_BARS_WIDTH_IN + _NOTES_WIDTH_IN)
    height = _HEADER_IN + 2 * (_PANEL_EXTRA_IN + max(2, len(configs)) * _ROW_IN)
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    grid = fig.add_gridspec(2, 4, width_ratios=[_BARS_WIDTH_IN, _NOTES_WIDTH_IN] * 2)
    first = None
    for i, (metric, title) in enumerate(PLOTTED_METRICS.items()):
        row, column = divmod(i, 2)
        bars = fig.add_subplot(grid[row, 2 * column], sharey=first)
        notes = fig.add_subplot(grid[row, 2 * column + 1], sharey=bars)
        first = first or bars
        _plot_panel(bars, notes, table[table["metric"] == metric], configs)
        bars.set_title(f"{title}: {metric}\n({METRICS[metric]} is better)", fontsize=10)
        # One set of configuration names per row of panels: the left one.
        bars.set_yticks(range(len(configs)), labels)
        bars.tick_params(axis="y", labelleft=column == 0, length=0)

    handles = [Patch(color=color, label=verdict) for verdict, color in _VERDICT_COLORS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    fig.suptitle(
        "Candidate vs baseline: ratio of medians per configuration\n"
        f"p: two-sided Mann-Whitney U, significant below {ALPHA:g}; "
        f"n<3: fewer than {MIN_REPEATS} repeats on a side, significance cannot be told",
        fontsize=11,
    )
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    with atomic_writer(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=_DPI)


def _config_labels(configs: list[tuple[str, str]]) -> list[str]:
    import pandas as pd

    return _labels(pd.DataFrame(configs, columns=["config_id", "backend"]))


def _plot_panel(
    bars: Axes, notes: Axes, rows: pd.DataFrame, configs: list[tuple[str, str]]
) -> None:
    """Bars from 1.0 to each configuration's ratio, top to bottom; the change beside them."""
    by_config = {(r.config_id, r.backend): r for r in rows.itertuples(index=False)}
    ratios = [by_config[key].ratio for key in configs if key in by_config]
    deviations = [abs(r - 1) for r in ratios if math.isfinite(r)]
    span = max(0.05, 1.15 * max(deviations, default=0.0))
    for y, key in enumerate(configs):
        row = by_config.get(key)
        if row is None:
            note, color, weight = "not measured", "dimgray", "normal"
        elif not math.isfinite(row.ratio):
            note = row.verdict if row.verdict.startswith("only") else "baseline median is 0"
            color, weight = "dimgray", "normal"
        else:
            bars.barh(y, row.ratio - 1, left=1.0, height=0.6, color=_VERDICT_COLORS[row.verdict])
            evidence = "n<3" if math.isnan(row.p_value) else _p_text(row.p_value)
            note = f"{(row.ratio - 1) * 100:+.1f}%, {evidence}"
            color, weight = "black", "normal"
            if row.regression:
                limits = [FailRule.parse(t).limit() for t in row.failed_rule.split("; ")]
                note += f"\nFAILS: worse by > {' and '.join(limits)}"
                color, weight = _VERDICT_COLORS[REGRESSED], "bold"
        notes.text(0.02, y, note, va="center", fontsize=8.5, color=color, fontweight=weight)
    bars.axvline(1.0, color="black", linewidth=1)
    bars.set_xlim(1 - span, 1 + span)
    bars.set_ylim(len(configs) - 0.5, -0.5)  # first configuration on top
    bars.set_xlabel("candidate / baseline")
    bars.spines[["top", "right"]].set_visible(False)
    bars.grid(axis="x", alpha=0.3)
    bars.set_axisbelow(True)
    notes.set_xlim(0, 1)
    notes.set_axis_off()
