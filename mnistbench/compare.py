"""Comparing two output directories: is the candidate faster, slower, or the same?

The library behind ``mnistbench compare BASELINE_DIR CANDIDATE_DIR [--fail RULE ...]``.
:func:`compare_runs` takes the two sides' typed tables of runs
(:func:`mnistbench.record.frame`) and returns one row per configuration, backend and
metric; :func:`regressions` names the rows that fail a ``--fail`` rule
(:mod:`mnistbench.gates`); :func:`work_differences` names the configurations whose two
sides did different work; :func:`write_compare_csv` writes ``compare.csv``
(``compare.png`` is :mod:`mnistbench.figures.compare`).

Only runs with status ``ok`` count. A configuration is a ``config_id`` (an
architecture plus its non-default execution options) on one ``backend``; its rows
are repeats with different seeds. The ``config_id`` does not name the work (epochs,
batch size, samples, target), so the two sides are compared only when their runs did
the same work (:func:`mnistbench.columns.work_options`). Each side is summarized by its
median, and the two sides are compared by their ratio and by a two-sided Mann-Whitney U test at
:data:`~mnistbench.stats.ALPHA`, run only when the repeats are enough for it to
find a change (:func:`mnistbench.stats.can_be_significant`). With fewer the
comparison says it cannot tell and how many repeats a side it needs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench import format as fmt
from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.columns import LOWER, metric, normalized, work_options
from mnistbench.errors import ConfigError
from mnistbench.gates import FailRule, compared_metrics
from mnistbench.record import in_order, label, ok, several_backends
from mnistbench.stats import (
    ALPHA,
    can_be_significant,
    holm,
    mann_whitney_p,
    ratio_of_medians,
    repeats_needed,
)

if TYPE_CHECKING:
    import pandas as pd

#: Repeats a side with which a change can be significant at :data:`ALPHA`.
REPEATS_NEEDED = repeats_needed(ALPHA)

# The verdicts, one per row of the table.
IMPROVED = "improved"
REGRESSED = "regressed"
NO_CHANGE = "no significant change"
CANNOT_TELL = f"cannot tell (needs {REPEATS_NEEDED} repeats a side)"
DIFFERENT_WORK = "different work"
ONLY_IN_BASELINE = "only in baseline"
ONLY_IN_CANDIDATE = "only in candidate"


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
    "ratio_low",
    "ratio_high",
    "baseline_n",
    "candidate_n",
    "p_value",
    "p_holm",
    "significant",
    "verdict",
    "different_work",
    "regression",
    "failed_rule",
    "normalized_baseline_median",
    "normalized_candidate_median",
    "normalized_ratio",
    "normalized_ratio_low",
    "normalized_ratio_high",
    "normalized_p_value",
    "normalized_p_holm",
    "normalized_verdict",
]


# --- the work a configuration's runs did ----------------------------------------------


def _value_text(value, absent: str = "") -> str:
    """``5``, ``60,000``, ``0.97``, ``True``: a work option's value as the user would read it;
    ``absent`` when it has none."""
    if fmt.missing(value):
        return absent
    if isinstance(value, bool):
        return str(value)
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _work(runs: pd.DataFrame) -> dict[str, pd.Series]:
    """Per work option (:func:`mnistbench.columns.work_options`), one text value per run;
    "" where not compared.

    With a target accuracy, ``epochs`` holds the epochs trained, which the target may cut
    short: that is an outcome (a faster-converging candidate trains fewer), not the work
    asked for, so runs with a target compare the target and ``eval_every`` instead of
    ``epochs``. The ``--epochs`` cap of such runs is not in ``runs.csv``; a cap that
    matters shows as a target not reached (``converged``).
    """
    with_target = runs["target_accuracy"].notna()
    absent = {"target_accuracy": "none", "eval_every": "each epoch"}
    work = {}
    for option in work_options():
        blank = absent.get(option, "")
        work[option] = runs[option].map(lambda v, blank=blank: _value_text(v, blank))
    work["epochs"] = work["epochs"].where(~with_target, "")
    work["eval_every"] = work["eval_every"].where(with_target, "")
    return work


def _distinct(values: pd.Series) -> list[str]:
    """The non-empty values, numbers first in numeric order, then words ("none")."""

    def order(value: str) -> tuple[int, float, str]:
        try:
            return (0, float(value.replace(",", "")), "")
        except ValueError:
            return (1, 0.0, value)

    return sorted({value for value in values if value}, key=order)


def _differences(base_work: dict[str, pd.Series], cand_work: dict[str, pd.Series]) -> list[str]:
    """``["epochs 1 vs 5", "train_samples 3,000 vs 60,000"]``: the options the sides disagree on.

    An option is compared when both sides recorded it; several values on one side
    (a directory merged from two sweeps) are listed as ``1/5``.
    """
    differences = []
    for option in work_options():
        b, c = _distinct(base_work[option]), _distinct(cand_work[option])
        if b and c and b != c:
            differences.append(f"{option} {'/'.join(b)} vs {'/'.join(c)}")
    return differences


# --- the comparison -------------------------------------------------------------------


def median(values: pd.Series) -> float:
    return float(values.median()) if len(values) else math.nan


def compare_runs(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    rules: Sequence[FailRule] = (),
    *,
    require_significance: bool = True,
    allow_different_work: bool = False,
    normalization_withheld: str = "",
) -> pd.DataFrame:
    """Compare two sets of runs: one row per (config_id, backend, metric).

    Rows come in the baseline's order of configurations, then the candidate's new
    ones, each with the metrics in :func:`compared_metrics` order. A metric is
    compared only when both DataFrames have its column (older ``runs.csv`` files
    lack some), and gets a row only when one side has values for it; failed runs
    and empty cells are left out.

    Columns (:data:`COMPARE_COLUMNS`):

    - ``config_id``, ``architecture``, ``backend`` ("" when unknown), ``metric``,
      ``better``: "lower" or "higher";
    - ``baseline_median``, ``candidate_median``: in the unit of the metric's column;
      ``ratio``: candidate / baseline (NaN when either is missing or the baseline is 0);
      ``ratio_low``, ``ratio_high``: its 95% confidence interval, a percentile bootstrap
      of the ratio of medians over each side's runs
      (:func:`mnistbench.stats.ratio_of_medians`; NaN with fewer than 2 runs a side);
    - ``baseline_n``, ``candidate_n``: the number of values behind each median;
    - ``p_value``: two-sided Mann-Whitney U (:func:`mnistbench.stats.mann_whitney_p`)
      when the sizes let it go below :data:`ALPHA`
      (:func:`mnistbench.stats.can_be_significant`: at least
      :data:`REPEATS_NEEDED` a side, or 3 against 5 or more), else NaN;
      ``significant``: ``p_value < ALPHA``, missing (``<NA>``) when not tested;
      ``p_holm``: for the tests a ``--fail`` rule makes, the p-value adjusted by Holm's
      method across all of them (:func:`mnistbench.stats.holm`), NaN for the others;
    - ``verdict``: "improved" or "regressed" (significant, by the direction of the
      medians), "no significant change", :data:`CANNOT_TELL` (too few repeats to
      test), "different work" (see below), "only in baseline" or "only in
      candidate" (the other side has no value: the configuration is missing there,
      all its runs failed, or the metric was not measured);
    - ``different_work``: the work options (:func:`mnistbench.columns.work_options`) the
      two sides' successful runs disagree on,
      ``"epochs 1 vs 5, train_samples 3,000 vs 60,000"``; "" when they did the same work;
    - ``regression``: True when a rule fails; ``failed_rule``: the failing rules as
      ``--fail`` text, "; "-separated, "" when none;
    - ``normalized_baseline_median``, ``normalized_candidate_median``,
      ``normalized_ratio`` (and its interval), ``normalized_p_value``,
      ``normalized_p_holm``, ``normalized_verdict``: the same
      comparison of the metric's normalized form (:func:`mnistbench.columns.normalized`:
      divided by each run's speed probe), beside the raw one; NaN and "" for a metric
      without one, runs without a probe, or when ``normalization_withheld`` gives the
      reason the two sides' probes do not compare (:func:`machine_comparison`).
      Rules on a normalized metric gate on these columns.

    Runs that did different work measure different things: their rows get the
    verdict "different work", no test and no gate, unless ``allow_different_work``,
    which compares and gates them as usual (``different_work`` still names the
    options). Rules with a different-work pair and without ``allow_different_work``
    are an error: a gate that silently skips a configuration is no gate.

    A rule on the row's metric fails when :meth:`FailRule.exceeded` and:

    - when tested and ``require_significance``: the change is also significant once the
      p-values of every test the rules make are adjusted together (Holm), so that gating
      many configurations and metrics at once keeps the chance of any false alarm at
      :data:`ALPHA`. Noise that happens to move a median never fails;
    - when not tested (too few repeats): on the threshold alone, so that sweeps
      with few repeats are still gated; :func:`regressions` says how many repeats
      significance needs. More repeats make the gate stricter about noise, never
      looser about real slowdowns;
    - with ``require_significance=False``: on the threshold alone, always.

    Rows present on one side only never fail a rule, except a configuration the
    candidate ran whose runs all failed: no result is the worst regression.

    :raises ConfigError: ``rules`` are given and a configuration's two sides did
        different work, without ``allow_different_work``; or a rule names a normalized
        metric while ``normalization_withheld``; or the rules gate no configuration (no
        configuration with a successful baseline run that the candidate ran); one line
        naming them.
    """
    import pandas as pd

    for rule in rules:
        if normalization_withheld and rule.metric not in compared_metrics():
            raise ConfigError(
                f'--fail "{rule}": normalized figures are not compared here: '
                f"{normalization_withheld}; gate the raw metric instead"
            )

    base, cand = keyed(baseline), keyed(candidate)
    tried = keyed(candidate, only_ok=False)
    # Configurations the candidate ran, successfully or not: one that only failed is gated.
    attempted = set(zip(tried["_config"], tried["_backend"], strict=True))
    metrics = compared_metrics()
    keys = in_order(
        [
            *zip(base["_config"], base["_backend"], strict=True),
            *zip(cand["_config"], cand["_backend"], strict=True),
        ]
    )
    several = several_backends(backend for _, backend in keys)
    base_work, cand_work = _work(base), _work(cand)
    pairs = []
    for config, backend in keys:
        in_base = (base["_config"] == config) & (base["_backend"] == backend)
        in_cand = (cand["_config"] == config) & (cand["_backend"] == backend)
        differences = _differences(
            {option: values[in_base] for option, values in base_work.items()},
            {option: values[in_cand] for option, values in cand_work.items()},
        )
        pairs.append((config, backend, base[in_base], cand[in_cand], ", ".join(differences)))

    differing = [
        f"{label(config, backend, several)}: {differences}"
        for config, backend, _, _, differences in pairs
        if differences
    ]
    if rules and differing and not allow_different_work:
        raise ConfigError(
            "--fail cannot gate runs that did different work ("
            + "; ".join(differing)
            + "); rerun with the same options, or pass --allow-different-work"
        )

    rows: list[dict[str, Any]] = []
    for config, backend, base_runs, cand_runs, differences in pairs:
        architecture = pd.concat([base_runs["_architecture"], cand_runs["_architecture"]]).iloc[0]
        for name in metrics:
            b, c = base_runs[name].dropna(), cand_runs[name].dropna()
            if b.empty and c.empty:
                continue
            gated = rules if (config, backend) in attempted else ()
            if c.empty and not cand_runs.empty:
                # The candidate's runs succeeded without measuring it (an older runs.csv):
                # not the missing result that fails a gate.
                gated = ()
            withheld = differences if not allow_different_work else ""
            row = _compare_metric(name, b, c, gated, require_significance, withheld)
            norm = normalized(name)
            if norm and not normalization_withheld:
                nb, nc = base_runs[norm].dropna(), cand_runs[norm].dropna()
                if not (nb.empty and nc.empty):
                    _add_normalized(
                        row, _compare_metric(norm, nb, nc, gated, require_significance, withheld)
                    )
            row.update(
                config_id=config,
                architecture=architecture,
                backend=backend,
                different_work=differences,
                metric_name=name,
            )
            rows.append(row)
    if rules:
        _refuse_empty_gate(pairs, attempted, candidate_runs=len(tried))
    _gate(rows, rules)
    table = pd.DataFrame(rows, columns=COMPARE_COLUMNS)
    table["significant"] = table["significant"].astype("boolean")
    table["regression"] = table["regression"].astype(bool)
    for column in ("baseline_n", "candidate_n"):
        table[column] = table[column].astype(int)
    for column in (
        "baseline_median", "candidate_median", "ratio", "ratio_low", "ratio_high", "p_value",
        "p_holm",
    ):  # fmt: skip
        table[column] = table[column].astype(float)
    for column in COMPARE_COLUMNS:
        if column.startswith("normalized_") and column != "normalized_verdict":
            table[column] = table[column].astype(float)  # None: not normalized
    verdicts = table["normalized_verdict"]
    table["normalized_verdict"] = verdicts.astype(object).where(verdicts.notna(), "")
    return table


def _refuse_empty_gate(
    pairs: list[tuple], attempted: set[tuple[str, str]], *, candidate_runs: int
) -> None:
    """A gate that checked no configuration is an error, not a pass: the baseline has no
    successful run, the candidate none at all, or the candidate ran none of the
    baseline's configurations. (A metric that an older ``runs.csv`` lacks on one side is
    not gated, as :func:`compare_runs` says; the configurations around it still are.)"""
    in_baseline = [(config, backend) for config, backend, base, *_ in pairs if not base.empty]
    if any(key in attempted for key in in_baseline):
        return
    if not in_baseline:
        why = "the baseline has no successful run"
    elif not candidate_runs:
        why = "the candidate has no runs"
    else:
        why = "the candidate ran none of the baseline's configurations"
    raise ConfigError(f"--fail gates nothing: {why}")


def _add_normalized(row: dict[str, Any], normalized_row: dict[str, Any]) -> None:
    """Put the comparison of a metric's normalized form beside the raw one in ``row``."""
    for key in (
        "baseline_median", "candidate_median", "ratio", "ratio_low", "ratio_high", "p_value",
        "p_holm", "verdict", "_exceeded", "_tested", "_worse",
    ):  # fmt: skip
        row[f"normalized_{key}" if not key.startswith("_") else f"_normalized{key}"] = (
            normalized_row[key]
        )
    row["normalized_metric_name"] = normalized_row["metric"]
    if normalized_row["regression"]:
        row["regression"] = True
        row["failed_rule"] = "; ".join(
            filter(None, (row["failed_rule"], normalized_row["failed_rule"]))
        )


def keyed(runs: pd.DataFrame, only_ok: bool = True) -> pd.DataFrame:
    """The ``ok`` runs (or all), with their keys in ``_config``, ``_architecture`` and
    ``_backend``."""
    keyed = (runs[ok(runs)] if only_ok else runs).copy()
    keyed["_config"] = keyed["config_id"]
    keyed["_architecture"] = keyed["architecture"]
    keyed["_backend"] = keyed["backend"]
    return keyed


def _compare_metric(
    name: str,
    baseline: pd.Series,
    candidate: pd.Series,
    rules: Sequence[FailRule],
    require_significance: bool,
    different_work: str,
) -> dict[str, Any]:
    """One row of the table, keys of the configuration aside; ``different_work`` withholds
    the verdict."""
    b_median, c_median = median(baseline), median(candidate)
    better = metric(name).better
    row: dict[str, Any] = {
        "metric": name,
        "better": better,
        "baseline_median": b_median,
        "candidate_median": c_median,
        "ratio": c_median / b_median if b_median and not math.isnan(b_median) else math.nan,
        "baseline_n": len(baseline),
        "candidate_n": len(candidate),
        "ratio_low": math.nan,
        "ratio_high": math.nan,
        "p_value": math.nan,
        "p_holm": math.nan,
        "significant": None,
        "verdict": "",
        "regression": False,
        "failed_rule": "",
        # What the gate decides on once every rule's test is known (:func:`_gate`).
        "_exceeded": [],
        "_tested": False,
        "_worse": False,
    }
    if candidate.empty:
        row["verdict"] = ONLY_IN_BASELINE
        # A configuration that no longer produces a result is the worst regression.
        failed = [str(r) for r in rules if r.metric == name]
        if failed and not baseline.empty:
            row["regression"], row["failed_rule"] = True, "; ".join(failed)
        return row
    if baseline.empty:
        row["verdict"] = ONLY_IN_CANDIDATE
        return row
    if different_work:
        row["verdict"] = DIFFERENT_WORK
        return row

    interval = ratio_of_medians(list(baseline), list(candidate))
    row["ratio_low"], row["ratio_high"] = interval.low, interval.high
    tested = can_be_significant(len(baseline), len(candidate), ALPHA)
    if tested:
        p_value = mann_whitney_p(baseline, candidate)
        # Identical samples can give NaN; that is no evidence of a change.
        significant = not math.isnan(p_value) and p_value < ALPHA
        row["p_value"], row["significant"] = p_value, significant
        worse = c_median > b_median if better == LOWER else c_median < b_median
        if not significant or c_median == b_median:
            row["verdict"] = NO_CHANGE
        else:
            row["verdict"] = REGRESSED if worse else IMPROVED
    else:
        row["verdict"] = CANNOT_TELL

    row["_exceeded"] = [
        str(r) for r in rules if r.metric == name and r.exceeded(b_median, c_median)
    ]
    # A NaN p-value (identical samples) is no evidence of a change: tested, never failing.
    row["_tested"] = tested and require_significance
    row["_worse"] = c_median > b_median if better == LOWER else c_median < b_median
    if row["_exceeded"] and not row["_tested"]:
        # Not tested (too few repeats, or significance not required): the threshold alone.
        row["regression"], row["failed_rule"] = True, "; ".join(row["_exceeded"])
    return row


def _gate(rows: list[dict[str, Any]], rules: Sequence[FailRule]) -> None:
    """Adjust the p-values of every test a rule makes together (Holm) and fail the tested
    rules whose change is significant after it, in the direction that is worse."""
    ruled = {rule.metric for rule in rules}
    family = [
        (row, prefix)
        for row in rows
        for prefix in ("", "normalized_")
        if row.get(f"_{prefix}tested") and row[f"{prefix}metric_name"] in ruled
    ]
    adjusted = holm([row[f"{prefix}p_value"] for row, prefix in family])
    for (row, prefix), p_holm in zip(family, adjusted, strict=True):
        row[f"{prefix}p_holm"] = p_holm
        if row[f"_{prefix}exceeded"] and p_holm < ALPHA and row[f"_{prefix}worse"]:
            failed = [row["failed_rule"], *row[f"_{prefix}exceeded"]]
            row["regression"], row["failed_rule"] = True, "; ".join(filter(None, failed))


# --- human-readable lines -------------------------------------------------------------


def untested_text(baseline_n: int, candidate_n: int) -> str:
    """Why a row has no p-value: ``n=3 vs 3: significance needs 4 repeats a side``."""
    return f"n={baseline_n} vs {candidate_n}: significance needs {REPEATS_NEEDED} repeats a side"


def row_labels(table: pd.DataFrame) -> list[str]:
    """Each row's configuration label (:func:`mnistbench.record.label`)."""
    several = several_backends(table["backend"])
    return [
        label(config, backend, several)
        for config, backend in zip(table["config_id"], table["backend"], strict=True)
    ]


def regressions(table: pd.DataFrame) -> list[str]:
    """One line per failing rule of a :func:`compare_runs` table, in table order.

    ``dnn fit_seconds: 10.0 s → 12.0 s (+20.0%, p=0.0079) exceeds 10%``.
    The change is relative for a percentage rule and absolute otherwise; when the
    rule failed without a test, the p-value is replaced by
    ``n=3 vs 3: significance needs 4 repeats a side``. Empty when nothing failed.
    """
    lines = []
    failing = table["regression"].astype(bool)
    labels = [name for name, fails in zip(row_labels(table), failing, strict=True) if fails]
    for name, (_, row) in zip(labels, table[failing].iterrows(), strict=True):
        if row["candidate_n"] == 0:
            b = row["baseline_median"]
            lines.append(
                f"{name} {row['metric']}: {metric(row['metric']).format(b)} → no successful "
                f"candidate run; fails {row['failed_rule']}"
            )
            continue
        for rule_text in str(row["failed_rule"]).split("; "):
            rule = FailRule.parse(rule_text)
            column = metric(rule.metric)
            prefix = "normalized_" if rule.metric != row["metric"] else ""
            b, c = row[f"{prefix}baseline_median"], row[f"{prefix}candidate_median"]
            p_value, p_holm = row[f"{prefix}p_value"], row[f"{prefix}p_holm"]
            if math.isnan(p_value):
                evidence = untested_text(row["baseline_n"], row["candidate_n"])
            elif math.isnan(p_holm) or p_holm == p_value:  # a family of one test
                evidence = fmt.p_value(p_value)
            else:
                evidence = f"{fmt.p_value(p_value)}, Holm-adjusted {fmt.p_value(p_holm)}"
            if rule.relative:
                change = f"{(c - b) / abs(b) * 100:+.1f}%" if b else "from 0"
            else:
                change = column.format(c - b, signed=True)
            lines.append(
                f"{name} {column.name}: {column.format(b)} → {column.format(c)} "
                f"({change}, {evidence}) exceeds {rule.limit()}"
            )
    return lines


def work_differences(table: pd.DataFrame) -> list[str]:
    """One line per configuration whose sides did different work, in table order.

    ``dnn: different work: epochs 1 vs 5, train_samples 3,000 vs 60,000``.
    """
    lines = [
        f"{name}: different work: {differences}"
        for name, differences in zip(row_labels(table), table["different_work"], strict=True)
        if differences
    ]
    return in_order(lines)


# --- compare.csv ------------------------------------------------------------------------


def write_compare_csv(table: pd.DataFrame, output_dir: Path) -> Path:
    """Write ``compare.csv`` (the table as is) into ``output_dir``, atomically."""
    path = layout.COMPARE_CSV.of(output_dir)
    with atomic_writer(path, "w") as handle:
        table.to_csv(handle, index=False, lineterminator="\n")
    return path
