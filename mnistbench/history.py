"""History: each configuration's figures sweep after sweep, and the commits where they moved.

A *series* is one configuration on one machine: every option of the work it did and of the
settings it ran under (the registry's :func:`mnistbench.columns.series_key`), so a smoke
sweep never mixes with a full one, and the machine the sweep ran on
(:func:`mnistbench.environment.machine_identity`: its ``MNISTBENCH_MACHINE`` label, else
its description), so two CI runners never share a line unless labelled alike
(:data:`SERIES_KEY`). A *point* is one
sweep's median over its successful runs of that configuration, ordered by the sweep's
start and labelled with its date, git commit, mnistbench version and plugin version.
A sweep whose runs of a configuration all failed is a point with no values (``runs``
0): it is shown, and change detection skips it.

Change detection fits a piecewise-constant function to each series with PELT
(Killick, Fearnhead and Eckley, "Optimal detection of changepoints with a linear
computational cost", JASA 107(500), 2012), as the ``ruptures`` library implements it
(Truong, Oudre and Vayatis, "Selective review of offline change point detection
methods", Signal Processing 167, 2020). It works on the logarithm of the values, so a
step is a ratio whatever the metric's scale, with a least-squares cost and the penalty
``4·σ²·ln n`` per change (a Schwarz/BIC-type penalty, twice the classic one, for the
short series benchmarks have). ``σ``, the series' noise, is estimated robustly: first
from the median absolute deviation of successive differences (a step is one outlying
difference, which the median ignores), then from the residuals of the fit, until the
segmentation stops changing; it is never taken below :data:`NOISE_FLOOR`. A segment
needs :data:`MIN_SEGMENT` points, so one odd sweep is not a change, and a fitted
change is reported only when it is significant against that noise (a t statistic on
the two segments' means, :data:`ALPHA`) and at least :data:`MIN_RELATIVE_CHANGE` in
size (asv's default regression threshold).

Why not asv's own step detection (``asv.step_detect``, a Potts-model L1 fit with an
automatic penalty): importing it imports the whole asv package, which loads every asv
command and plugin (about 320 modules) and creates a multiprocessing lock, fixing the
process's default start method; it also brings virtualenv and build as dependencies.
And on series of 8 to 12 points its automatic penalty was erratic in our trials: it
missed a 40% step under ±10% noise in 4 trials out of 10, and sometimes made every
point a segment of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Literal

from mnistbench.columns import (
    BY_NAME,
    COMPARED,
    CONFIG_KEY,
    HIGHER,
    in_view,
    metrics,
    normalized,
)
from mnistbench.columns import series_key as registry_series_key
from mnistbench.errors import MnistbenchError
from mnistbench.format import missing
from mnistbench.plan import jit_word
from mnistbench.record import in_order, label, ok, several_backends
from mnistbench.stats import CONFIDENCE

if TYPE_CHECKING:
    import pandas as pd

    from mnistbench.stores import Store

#: The column of the store's runs table that names the machine a sweep ran on.
MACHINE = "machine"
#: The options that shape a run's work and its conditions, and the machine: runs that
#: agree on all of them form a series.
SERIES_KEY: tuple[str, ...] = (*registry_series_key(), MACHINE)

#: The metrics history tracks: those ``mnistbench compare`` tests, plus the speed probe.
HISTORY_METRICS: tuple[str, ...] = tuple(
    dict.fromkeys([*(c.name for c in in_view(COMPARED)), "probe_seconds"])
)
#: Every registry metric: each point carries the median of all of them (``--metric``).
_ALL_METRICS: tuple[str, ...] = tuple(c.name for c in metrics())

#: The metrics of the history pages (``mnistbench history --html``), each beside its
#: normalized form where it has one.
PAGE_METRICS: tuple[str, ...] = (
    "fit_seconds",
    "steady_epoch_seconds",
    "inference_samples_per_second",
    "latency_ms",
    "test_accuracy",
    "peak_memory_mb",
    "probe_seconds",
)

#: Each point's identity columns, before the metrics.
POINT_COLUMNS: tuple[str, ...] = (
    "series",
    "label",
    *SERIES_KEY,
    "sweep_id",
    "started_at",
    "commit",
    "dirty",
    "mnistbench_version",
    "plugin_version",
    "runs",
)

#: Noise never estimated below 1% (in log units): identical values are not infinitely precise.
NOISE_FLOOR = 0.01
#: Points a segment needs: a single odd sweep is an outlier, not a change.
MIN_SEGMENT = 2
#: Penalty per change, in units of ``σ² · ln n``.
PENALTY_FACTOR = 4.0
#: Significance a fitted change must reach against the series' noise (two-sided).
ALPHA = 0.01
#: Smallest change reported, as a fraction of the level before it.
MIN_RELATIVE_CHANGE = 0.05
#: Fewer valid points than this: no detection.
MIN_POINTS = 3

REGRESSION = "regression"
IMPROVEMENT = "improvement"


@dataclass(frozen=True)
class Change:
    """A step in one series' metric.

    :param position: index in the series (its points in order) of the first point after it.
    :param from_commit: the last point before it (:func:`commit_label`).
    :param to_commit: the first point after it.
    :param before: the level before it (median of the segment before).
    :param after: the level after it (median of the segment after).
    :param ratio: ``after / before``.
    :param kind: ``"regression"`` or ``"improvement"``, from the metric's better direction.
    :param low, high: the 95% confidence interval of the step's size as a ratio: the
        difference of the two segments' mean logarithms, with the series' noise pooled
        over all its segments (a t interval); NaN for a metric with values of 0 or below.
    :param survives_normalization: whether the metric's ``_normalized`` series changes the
        same way at the same or an adjacent position (False: the machine's speed explains
        it); None when the metric has no normalized column or the series has no
        normalized values.
    """

    series: str
    label: str
    metric: str
    position: int
    from_commit: str
    to_commit: str
    before: float
    after: float
    ratio: float
    kind: Literal["regression", "improvement"]
    survives_normalization: bool | None
    low: float = math.nan
    high: float = math.nan


class HistoryError(MnistbenchError):
    """History cannot be shown as asked: unknown metric, bad date, nothing matches."""


# --- points ---------------------------------------------------------------------------------


def check_metric(name: str) -> str:
    """``name`` when it is a registry metric; HistoryError naming the choices otherwise."""
    column = BY_NAME.get(name)
    if column is None or not column.is_metric:
        raise HistoryError(f"unknown metric {name!r}; choose one of: {', '.join(_ALL_METRICS)}")
    return name


def parse_since(value: str) -> date:
    """A ``YYYY-MM-DD`` date; HistoryError otherwise."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise HistoryError(f"--since {value!r}: not a date, give YYYY-MM-DD") from None


def commit_label(commit: str, dirty: bool | None) -> str:
    """``abc1234``, ``abc1234-dirty`` when the tree had changes, ``unknown`` with no commit."""
    if not commit:
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def load_points(store: Store, **selection) -> pd.DataFrame:
    """The history points of a results store (see :func:`points_from_runs`, which takes
    ``selection``). StoreError when the store is missing or unreadable."""
    return points_from_runs(store.read_runs(), **selection)


def points_from_runs(
    runs: pd.DataFrame,
    *,
    architectures: Sequence[str] = (),
    backends: Sequence[str] = (),
    machines: Sequence[str] = (),
    since: date | None = None,
) -> pd.DataFrame:
    """One row per (series, sweep): the sweep's medians over its successful runs of the series.

    ``runs`` is :meth:`mnistbench.stores.Store.read_runs`'s table: runs.csv columns plus
    the sweep's (``sweep_id``, ``sweep_started_at``, ``git_commit``, ``git_dirty``,
    ``mnistbench_version``, ``machine``). Columns: :data:`POINT_COLUMNS` (``series`` a
    stable short id, ``label`` the configuration's label, ``started_at`` a UTC Timestamp,
    ``commit`` the short commit, ``runs`` the successful runs behind the medians), then the
    median of
    every registry metric. Ordered by series (first seen first), then start. Empty
    architectures/backends/machines select all; ``since`` keeps sweeps started on or after
    it.
    """
    import pandas as pd

    keys = series_keys(runs)
    architecture = keys["architecture"]
    selected = pd.Series(True, index=runs.index)
    if architectures:
        selected &= architecture.isin(list(architectures))
    if backends:
        selected &= keys["backend"].isin(list(backends))
    if machines:
        selected &= keys[MACHINE].isin(list(machines))
    started = _sweep_start(runs)
    if since is not None:
        selected &= started >= pd.Timestamp(since, tz="UTC")
    if not selected.any():
        return pd.DataFrame(columns=[*POINT_COLUMNS, *_ALL_METRICS])

    frame = keys[selected].copy()
    frame["_series"] = [_series_id(row) for row in frame.itertuples(index=False)]
    frame["_sweep"] = runs.loc[selected, "sweep_id"].astype(str)
    frame["_started"] = started[selected]
    frame["_commit"] = runs.loc[selected, "git_commit"].astype(str).str[:7]
    frame["_dirty"] = runs.loc[selected, "git_dirty"].map(_flag)
    frame["_version"] = runs.loc[selected, "mnistbench_version"].astype(str)
    frame["_plugin_version"] = runs.loc[selected, "plugin_version"]
    frame["_ok"] = ok(runs)[selected]
    for name in _ALL_METRICS:
        # Only successful runs' figures count; a failed run's cells are empty anyway.
        frame[name] = runs.loc[selected, name].where(frame["_ok"])

    labels = _labels(frame.drop_duplicates("_series").set_index("_series")[list(SERIES_KEY)])
    points = []
    for (series, sweep), group in frame.groupby(["_series", "_sweep"], sort=False, dropna=False):
        first = group.iloc[0]
        point = {
            "series": series,
            "label": labels[series],
            **{key: first[key] for key in SERIES_KEY},
            "sweep_id": sweep,
            "started_at": group["_started"].min(),
            "commit": first["_commit"],
            "dirty": None if missing(first["_dirty"]) else bool(first["_dirty"]),
            "mnistbench_version": first["_version"],
            "plugin_version": ", ".join(v for v in in_order(group["_plugin_version"]) if v),
            "runs": int(group["_ok"].sum()),
        }
        point.update({name: group[name].median() for name in _ALL_METRICS})
        points.append(point)
    table = pd.DataFrame(points, columns=[*POINT_COLUMNS, *_ALL_METRICS])
    order = {series: i for i, series in enumerate(in_order(table["series"]))}
    table["_order"] = table["series"].map(order)
    table = table.sort_values(["_order", "started_at", "sweep_id"], kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)


def _flag(value) -> bool | None:
    """A sweep's git dirtiness as the store keeps it (True/False, their text, 1/0)."""
    if missing(value):
        return None
    return str(value).strip().lower() in ("true", "1")


def series_keys(runs: pd.DataFrame) -> pd.DataFrame:
    """The :data:`SERIES_KEY` columns, as the typed table holds them (text, True/False/None,
    floats), with what a series needs beyond them (below)."""
    keys = runs[[key for key in SERIES_KEY if key != MACHINE]].copy()
    keys[MACHINE] = runs[MACHINE].fillna("").astype(str) if MACHINE in runs else ""
    # With a target accuracy, runs.csv's epochs are those trained before the target was
    # reached, not those planned: they vary from run to run and do not define the work.
    keys.loc[keys["target_accuracy"].notna(), "epochs"] = math.nan
    # A run that failed records jit as planned (None for "auto"), one that succeeded as
    # Keras resolved it: a failed run belongs to the series of its configuration's
    # successful runs, so a sweep whose runs all failed is a gap in it, not a new series.
    succeeded = ok(runs)
    group = runs["config_id"] + "\x00" + keys["backend"]
    resolved = {
        name: values.iloc[0]
        for name, values in keys.loc[succeeded, "jit_compile"].groupby(group[succeeded])
        if values.nunique(dropna=True) == 1 and values.notna().all()
    }
    unresolved = ~succeeded & keys["jit_compile"].isna() & group.isin(list(resolved))
    keys["jit_compile"] = keys["jit_compile"].astype(object)
    keys.loc[unresolved, "jit_compile"] = group[unresolved].map(resolved)
    return keys


def _sweep_start(runs: pd.DataFrame) -> pd.Series:
    """Each run's sweep start as a UTC Timestamp; the sweep's first run start when unknown."""
    import pandas as pd

    started = pd.to_datetime(
        runs["sweep_started_at"].astype(str), utc=True, errors="coerce", format="ISO8601"
    )
    run_started = pd.to_datetime(runs["started_at"], utc=True, errors="coerce", format="ISO8601")
    first_run = run_started.groupby(runs["sweep_id"].astype(str)).transform("min")
    return started.fillna(first_run)


def _key_value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, (bool, str)) else float(value)


def _series_id(row) -> str:
    """``dnn-1a2b3c4d``: the architecture and a hash of the whole key, stable across runs."""
    values = {key: _key_value(getattr(row, key)) for key in SERIES_KEY}
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    return f"{values['architecture'] or 'unknown'}-{digest}"


def _labels(keys: pd.DataFrame) -> dict[str, str]:
    """Each series' label: ``dnn``, ``dnn (jax)`` beside other backends, then the options
    that differ between the series shown: ``dnn · 1 epoch · 2,000/300 samples``."""
    several = several_backends(keys["backend"])
    options = [key for key in SERIES_KEY if key not in CONFIG_KEY]
    varying = [key for key in options if len({_key_value(value) for value in keys[key]}) > 1]
    labels = {}
    for series, row in keys.iterrows():
        parts = [label(row["architecture"] or "unknown", row["backend"], several)]
        samples_shown = False
        for key in varying:
            if key in ("train_samples", "test_samples"):
                if not samples_shown:
                    parts.append(_samples_text(row))
                    samples_shown = True
                continue
            parts.append(_option_text(key, _key_value(row[key])))
        labels[series] = " · ".join(parts)
    return labels


def _samples_text(row) -> str:
    train, test = (_key_value(row[key]) for key in ("train_samples", "test_samples"))
    fmt = lambda value: "?" if value is None else f"{value:,}"  # noqa: E731
    return f"{fmt(train)}/{fmt(test)} samples"


def _option_text(key: str, value) -> str:
    if key == "epochs":
        return "epochs to target" if value is None else f"{value} epoch{'' if value == 1 else 's'}"
    if key == "jit_compile":
        return f"jit {jit_word(value)}"
    if key == "target_accuracy":
        return "no target" if value is None else f"target {value:g}"
    if key == "eval_every":
        return "eval each epoch" if value is None else f"eval every {value}"
    if key == "cpus_reserved":
        return f"{value} CPUs" if value is not None else "CPUs ?"
    if key == MACHINE:
        return f"on {value}" if value else "on an unknown machine"
    if key in ("executor", "isolation"):
        return f"{key} {value or '?'}"
    short = {"batch_size": "batch", "steps_per_execution": "spe"}.get(key, key)
    return f"{short} {value if value is not None else '?'}"


# --- change detection ----------------------------------------------------------------------


def step_positions(values: Sequence[float]) -> list[int]:
    """Where ``values`` step: the index of the first value after each change, in order.

    Missing values (None, NaN) are skipped and keep their places in the indexing; fewer
    than :data:`MIN_POINTS` values give none. See the module's docstring for the method.
    """
    import numpy as np

    valid = [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if len(valid) < max(MIN_POINTS, 2 * MIN_SEGMENT):
        return []
    index = [i for i, _ in valid]
    y = np.array([v for _, v in valid])
    if (y > 0).all():
        # In logs a step is a ratio, whatever the metric's scale, and noise is relative.
        cuts = _fit(np.log(y), lambda before, after: abs(math.exp(after - before) - 1))
    else:
        scale = max(float(np.median(np.abs(y))), 1e-12)
        cuts = _fit(y / scale, lambda before, after: abs(after - before) / max(abs(before), 1e-12))
    return [index[b] for b in cuts]


def _fit(y, relative: Callable[[float, float], float]) -> list[int]:
    """Change positions (into ``y``) of a PELT fit with a noise-scaled penalty, kept when
    significant and when ``relative(level_before, level_after)`` is large enough."""
    import numpy as np
    import ruptures
    from scipy import stats

    n = len(y)
    steps = np.diff(y)
    # MAD of successive differences: a step is one outlying difference, which it ignores.
    noise = max(1.4826 * float(np.median(np.abs(steps - np.median(steps)))) / math.sqrt(2), 0)
    noise = max(noise, NOISE_FLOOR)
    algo = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit(y.reshape(-1, 1))
    seen: set[tuple[int, ...]] = set()
    ends: list[int] = [n]
    for _ in range(10):  # refit with the noise of the fit's residuals until it settles
        ends = algo.predict(pen=PENALTY_FACTOR * noise**2 * math.log(n))
        if tuple(ends) in seen:
            break
        seen.add(tuple(ends))
        starts = [0, *ends[:-1]]
        residual = sum(
            float(((y[a:b] - y[a:b].mean()) ** 2).sum()) for a, b in zip(starts, ends, strict=True)
        )
        noise = max(math.sqrt(residual / max(n - len(ends), 1)), NOISE_FLOOR)
    critical = stats.t.ppf(1 - ALPHA / 2, max(n - len(ends), 1))
    edges = [0, *ends]
    kept = []
    for start, cut, end in zip(edges, edges[1:], edges[2:], strict=False):
        before, after = y[start:cut], y[cut:end]
        spread = noise * math.sqrt(1 / len(before) + 1 / len(after))
        t = abs(after.mean() - before.mean()) / spread
        size = relative(float(np.median(before)), float(np.median(after)))
        if t >= critical and size >= MIN_RELATIVE_CHANGE:
            kept.append(cut)
    return kept


def detect_changes(points: pd.DataFrame, metric: str) -> list[Change]:
    """The steps of ``metric`` in every series of ``points`` (:func:`points_from_runs`),
    series by series in the order they appear.

    Series whose values are all missing (a metric not measured yet) give none.
    """
    check_metric(metric)
    norm = normalized(metric)
    better = BY_NAME[metric].better
    changes = []
    for series in in_order(points["series"]):
        rows = points[points["series"] == series].reset_index(drop=True)
        values = _values(rows, metric)
        positions = step_positions(values)
        if not positions:
            continue
        normalized_steps = None
        if norm is not None and any(math.isfinite(v) for v in _values(rows, norm)):
            norm_values = _values(rows, norm)
            normalized_steps = [
                (p, _level_ratio(norm_values, p, step_positions(norm_values)))
                for p in step_positions(norm_values)
            ]
        commits = [commit_label(c, d) for c, d in zip(rows["commit"], rows["dirty"], strict=True)]
        intervals = step_intervals(values, positions)
        for position in positions:
            before, after = _levels(values, position, positions)
            low, high = intervals[position]
            ratio = after / before if before else math.inf
            worse = ratio < 1 if better == HIGHER else ratio > 1
            survives = None
            if normalized_steps is not None:
                survives = any(
                    abs(p - position) <= 1 and (r > 1) == (ratio > 1) for p, r in normalized_steps
                )
            changes.append(
                Change(
                    series=series,
                    label=str(rows["label"].iloc[0]),
                    metric=metric,
                    position=position,
                    from_commit=_last_valid(commits, values, position),
                    to_commit=commits[position],
                    before=before,
                    after=after,
                    ratio=ratio,
                    kind=REGRESSION if worse else IMPROVEMENT,
                    survives_normalization=survives,
                    low=low,
                    high=high,
                )
            )
    return changes


def step_intervals(
    values: Sequence[float], positions: Sequence[int]
) -> dict[int, tuple[float, float]]:
    """For each change position, the 95% interval of the step's ratio (after / before): the
    segments' mean logarithms differ by ``d``, the noise ``σ`` is pooled over the residuals
    of every segment, and the interval is ``exp(d ± t·σ·√(1/n₁ + 1/n₂))`` with ``t`` from
    Student's t at the residuals' degrees of freedom. NaN where a value is 0 or below, or
    no degree of freedom is left."""
    import numpy as np
    from scipy import stats

    valid = [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    nothing = {position: (math.nan, math.nan) for position in positions}
    if not positions or not valid or any(v <= 0 for _, v in valid):
        return nothing
    edges = [0, *positions, len(values)]
    segments = [
        np.log([v for i, v in valid if start <= i < end])
        for start, end in zip(edges, edges[1:], strict=False)
    ]
    freedom = len(valid) - len(segments)
    if freedom < 1 or any(len(segment) == 0 for segment in segments):
        return nothing
    residual = sum(float(((seg - seg.mean()) ** 2).sum()) for seg in segments)
    noise = max(math.sqrt(residual / freedom), NOISE_FLOOR)
    critical = float(stats.t.ppf(1 - (1 - CONFIDENCE) / 2, freedom))
    found = {}
    for k, position in enumerate(positions):
        before, after = segments[k], segments[k + 1]
        step = float(after.mean() - before.mean())
        half = critical * noise * math.sqrt(1 / len(before) + 1 / len(after))
        found[position] = (math.exp(step - half), math.exp(step + half))
    return found


def _values(rows: pd.DataFrame, metric: str) -> list[float]:
    return [float(v) for v in rows[metric]]


def _levels(values: list[float], position: int, positions: list[int]) -> tuple[float, float]:
    """Medians of the segments either side of the change at ``position``."""
    import numpy as np

    edges = [0, *positions, len(values)]
    i = edges.index(position)
    segment = lambda a, b: [v for v in values[a:b] if math.isfinite(v)]  # noqa: E731
    return (
        float(np.median(segment(edges[i - 1], position))),
        float(np.median(segment(position, edges[i + 1]))),
    )


def _level_ratio(values: list[float], position: int, positions: list[int]) -> float:
    before, after = _levels(values, position, positions)
    return after / before if before else math.inf


def _last_valid(commits: list[str], values: list[float], position: int) -> str:
    """The commit of the last measured point before ``position`` (failed sweeps skipped)."""
    for i in range(position - 1, -1, -1):
        if math.isfinite(values[i]):
            return commits[i]
    return commits[position - 1]


def sort_changes(changes: Sequence[Change]) -> list[Change]:
    """Regressions first, each kind biggest first (by the size of the ratio's log)."""
    return sorted(changes, key=lambda c: (c.kind != REGRESSION, -abs(math.log(c.ratio or 1e-300))))
