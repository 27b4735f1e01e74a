"""Runs in other tools' formats: ``pytest-benchmark.json``, read by ``pytest-benchmark compare``.

:func:`to_pytest_benchmark` turns the ``ok`` runs of a ``runs.csv`` DataFrame into the
document pytest-benchmark itself writes with ``--benchmark-json``, built by its own code:
:class:`pytest_benchmark.stats.Metadata` and :class:`~pytest_benchmark.stats.Stats` compute
and lay out each benchmark, ``pytest_benchmark_generate_json`` the document,
``pytest_benchmark_generate_machine_info`` and ``get_commit_info`` describe the machine and
the repository. :func:`write_pytest_benchmark` writes it atomically.

A configuration (a ``config_id`` on one ``backend``) becomes up to four benchmarks, one
per group, each round being one repeat:

========================  =================================================================
group / name              seconds per round
========================  =================================================================
``fit[<config>]``         ``fit_seconds``
``steady_epoch[...]``     ``steady_epoch_seconds`` (mean of epochs 2..n)
``inference[...]``        ``test_samples / inference_samples_per_second``: one predict call
                          over the test set
``latency[...]``          ``latency_ms / 1000``: the run's median single-sample latency
========================  =================================================================

A group whose column is missing (older ``runs.csv``) or has no finite value is left out.
Nothing heavy is imported at module level.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import mnistbench
from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.columns import BY_NAME, EXTRA_INFO, INT, WORK, in_view, with_role
from mnistbench.environment import read_environment
from mnistbench.format import plain
from mnistbench.record import in_order, labels, ok

if TYPE_CHECKING:
    import pandas as pd

#: The columns reported as a benchmark's ``params``: the work its runs did.
PARAM_COLUMNS = tuple(column.name for column in with_role(WORK))
#: Run columns summarized by their median across repeats in ``extra_info``.
MEDIAN_COLUMNS = tuple(column.name for column in in_view(EXTRA_INFO))
#: Columns the repeats share, copied into ``extra_info``: the model's size.
SHARED_COLUMNS = ("params",)

#: Whether each group's timed call was preceded by an untimed one (pytest-benchmark's
#: ``warmup`` option): predict and single-sample latency are warmed up; fit is not, and a
#: steady epoch follows the first, compiling, epoch.
WARMUP = {"fit": False, "steady_epoch": True, "inference": True, "latency": True}


def _shared(rows: pd.DataFrame, column: str) -> Any:
    """The one value the repeats record in ``column``; None where they differ or it is empty.

    ``epochs`` differs when a time-to-accuracy target stopped some repeats early.
    """
    values = [value for value in rows[column] if plain(value) is not None]
    distinct = in_order(values)
    if len(distinct) != 1:
        return None
    value = plain(distinct[0])
    if BY_NAME[column].kind == INT and isinstance(value, float) and value.is_integer():
        value = int(value)
    return value


def _finite(series: pd.Series) -> list[float]:
    return [float(v) for v in series if math.isfinite(v)]


def _rounds(rows: pd.DataFrame) -> dict[str, list[float]]:
    """Seconds per round of each group, in repeat order; groups without a value left out."""
    rounds = {
        "fit": _finite(rows["fit_seconds"]),
        "steady_epoch": _finite(rows["steady_epoch_seconds"]),
        # The runner measures samples/s as test_samples / predict seconds; invert it back.
        "inference": _finite(rows["test_samples"] / rows["inference_samples_per_second"]),
        "latency": _finite(rows["latency_ms"] / 1000),
    }
    return {group: data for group, data in rounds.items() if data}


def _extra_info(rows: pd.DataFrame) -> dict:
    import pandas as pd

    info: dict[str, Any] = {}
    for column in MEDIAN_COLUMNS:
        values = _finite(rows[column])
        if values:
            info[column] = float(pd.Series(values).median())
    for column in SHARED_COLUMNS:
        info[column] = _shared(rows, column)
    info["repeats"] = len(rows)
    return info


def _benchmarks(runs: pd.DataFrame) -> list:
    """One pytest-benchmark ``Metadata`` per configuration and group, stats filled in."""
    from pytest_benchmark.stats import Metadata

    # Labels over every run, as the other reports make them; then only the ok runs count.
    names = labels(runs)
    succeeded = ok(runs)
    runs, names = runs[succeeded], names[succeeded]

    benchmarks = []
    for param in in_order(names):
        rows = runs[names == param]
        params = {column: _shared(rows, column) for column in PARAM_COLUMNS}
        extra_info = _extra_info(rows)
        for group, data in _rounds(rows).items():
            name = f"{group}[{param}]"
            fixture = SimpleNamespace(
                name=name,
                fullname=f"mnistbench::{name}",
                group=group,
                param=param,
                params=params,
                extra_info=extra_info,
                cprofile_stats=None,
                has_error=False,
            )
            options = {
                "disable_gc": False,
                "timer": "perf_counter",
                "min_rounds": len(data),
                # mnistbench repeats a fixed number of times; no time-based calibration.
                "max_time": None,
                "min_time": None,
                "precision": None,
                "confidence": None,
                "warmup": WARMUP[group],
            }
            metadata = Metadata(fixture, iterations=1, options=options)
            for seconds in data:
                metadata.update(seconds)
            benchmarks.append(metadata)
    return benchmarks


def _measured_at(runs: pd.DataFrame) -> str | None:
    """When the earliest ok run started, ISO 8601 in UTC; None without ``started_at``."""
    import pandas as pd

    started = pd.to_datetime(runs.loc[ok(runs), "started_at"], errors="coerce", utc=True)
    started = started.dropna()
    return started.min().isoformat() if len(started) else None


def _recorded_machine_info(environment: dict) -> dict:
    """pytest-benchmark's ``machine_info`` as the sweep recorded it, with the whole
    ``environment.json`` under ``"mnistbench"``.

    Older directories recorded no ``machine_info``: what ``environment.json`` says stands
    in (never the machine the report is written on, which may not be the one that ran).
    """
    info = dict(environment.get("machine_info") or {})
    if not info and environment:
        info = {
            "python_version": environment.get("python"),
            "cpu": {"brand_raw": environment.get("cpu"), "count": environment.get("cpu_count")},
            "platform": environment.get("platform"),
        }
    info["mnistbench"] = environment
    return info


def _recorded_commit_info(environment: dict) -> dict:
    """pytest-benchmark's ``commit_info`` as the sweep recorded it (older directories: the
    ``git_commit`` they recorded), never the working directory's at report time."""
    if environment.get("commit_info"):
        return dict(environment["commit_info"])
    commit = environment.get("git_commit")
    return {"id": commit} if commit else {}


def to_pytest_benchmark(runs: pd.DataFrame, *, environment: dict) -> dict:
    """The ok runs of ``runs`` as the document ``pytest --benchmark-json`` writes.

    Each configuration's repeats are the rounds (one iteration each) of its ``fit``,
    ``steady_epoch``, ``inference`` and ``latency`` benchmarks, with all the data kept,
    as ``--benchmark-json`` keeps it. ``machine_info`` and ``commit_info`` come from
    ``environment`` (the ``environment.json`` of the runs): the machine and commit the
    runs were measured on, recorded when the sweep ran, so that writing the file again
    later gives the same document; the whole environment is under
    ``machine_info["mnistbench"]``. ``datetime`` is when the earliest run started, or now.

    Every value is plain JSON: ``json.dumps(result, allow_nan=False)`` succeeds.
    """
    from pytest_benchmark.plugin import pytest_benchmark_generate_json

    document = pytest_benchmark_generate_json(
        config=None,
        benchmarks=_benchmarks(runs),
        include_data=True,
        machine_info=_recorded_machine_info(environment),
        commit_info=_recorded_commit_info(environment),
    )
    document["datetime"] = _measured_at(runs) or document["datetime"]
    return plain(document)


def write_pytest_benchmark(runs: pd.DataFrame, output_dir: Path) -> Path:
    """Write :func:`to_pytest_benchmark` of ``runs`` to ``output_dir/pytest-benchmark.json``.

    The environment comes from ``output_dir/environment.json``. The file is written
    atomically and formatted as pytest-benchmark formats its own. Compare two with
    ``pytest-benchmark compare BASELINE.json CANDIDATE.json``.
    """
    from pytest_benchmark.utils import safe_dumps

    path = layout.PYTEST_BENCHMARK_JSON.of(output_dir)
    text = safe_dumps(
        to_pytest_benchmark(runs, environment=read_environment(output_dir)),
        ensure_ascii=True,
        indent=4,
        allow_nan=False,
    )
    with atomic_writer(path, "w") as handle:
        handle.write(text)
        handle.write("\n")
    return path


@mnistbench.hookimpl
def mnistbench_write_report(runs: pd.DataFrame, output_dir: Path) -> list[Path]:
    """The core reporter of ``pytest-benchmark.json``: the same file after ``mnistbench run``
    and ``mnistbench report``."""
    return [write_pytest_benchmark(runs, output_dir)]
