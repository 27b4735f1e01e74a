"""Runs for the services teams already chart benchmarks with: Bencher and github-action-benchmark.

``mnistbench export`` takes one result directory, or a results store's latest sweep of each
configuration on one machine, and writes

- ``bmf.json``, the Bencher Metric Format: ``{benchmark: {measure: {value, lower_value,
  upper_value}}}`` (https://bencher.dev/docs/reference/bencher-metric-format), for
  ``bencher run --adapter json --file bmf.json``; the machine is Bencher's *testbed*
  (``--testbed``), so it is not in the names;
- ``github-action-benchmark-smaller.json`` and ``github-action-benchmark-bigger.json``,
  github-action-benchmark's ``customSmallerIsBetter`` and ``customBiggerIsBetter`` inputs:
  arrays of ``{name, unit, value, range, extra}``, the metrics that are better lower in the
  first and those better higher in the second, since the action alerts on one direction
  per file.

A benchmark is one configuration: its name carries every option of the work and settings
that make it (:func:`benchmark_name`), so one configuration keeps one line from sweep to
sweep and two configurations never share one, whatever else the sweep ran. Each value is
the median over the configuration's successful repeats, its lower and upper values (the
action's range) the smallest and largest repeat. A metric a configuration did not measure
is left out, never written as null (the action reads null as 0); a configuration whose
runs all failed is left out and named.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.columns import COMPARED, HIGHER, LOWER, Column, in_view
from mnistbench.errors import MnistbenchError
from mnistbench.history import MACHINE, SERIES_KEY, series_keys
from mnistbench.plan import jit_word
from mnistbench.record import ok

if TYPE_CHECKING:
    import pandas as pd

#: The metrics exported: those ``mnistbench compare`` tests.
EXPORTED: tuple[Column, ...] = tuple(in_view(COMPARED))
#: The options a benchmark's name spells out after its architecture and backend.
NAME_OPTIONS: tuple[str, ...] = tuple(
    key for key in SERIES_KEY if key not in ("architecture", "backend", MACHINE)
)

BMF = "bmf"
GITHUB_ACTION_BENCHMARK = "github-action-benchmark"
FORMATS = (BMF, GITHUB_ACTION_BENCHMARK)


class ExportError(MnistbenchError):
    """Nothing can be exported as asked: no successful run, several machines, no such sweep."""


@dataclass(frozen=True)
class Benchmark:
    """One configuration's figures: its name, and for each exported metric the median,
    smallest and largest of its successful repeats."""

    name: str
    runs: int
    commit: str
    values: dict[str, tuple[float, float, float]]


def _option_value(key: str, value: Any) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "auto" if key == "jit_compile" else "none"
    if key == "jit_compile":
        return jit_word(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "none"
    return str(value)


def benchmark_name(keys: dict[str, Any]) -> str:
    """``dnn[tensorflow] epochs=1 batch_size=128 ...``: the architecture, the backend and every
    other option of :data:`NAME_OPTIONS`, in the registry's order, so the name changes only
    when the configuration does."""
    options = " ".join(f"{key}={_option_value(key, keys.get(key))}" for key in NAME_OPTIONS)
    return f"{keys['architecture']}[{keys['backend'] or 'default'}] {options}"


def benchmarks(runs: pd.DataFrame) -> tuple[list[Benchmark], list[str]]:
    """The benchmarks of a runs table (``runs.csv``'s, or a store's): one per configuration
    with a successful run, and the names of those whose runs all failed."""
    keys = series_keys(runs)
    names = [benchmark_name(row) for row in keys.to_dict("records")]
    succeeded = ok(runs)
    found, failed = [], []
    for name in dict.fromkeys(names):
        mine = [i for i, other in enumerate(names) if other == name]
        good = runs.iloc[mine][succeeded.iloc[mine].to_numpy()]
        if good.empty:
            failed.append(name)
            continue
        values = {}
        for column in EXPORTED:
            if column.name not in good:
                continue
            measured = [float(v) for v in good[column.name] if _finite(v)]
            if measured:
                measured.sort()
                values[column.name] = (_median(measured), measured[0], measured[-1])
        commits = good["git_commit"] if "git_commit" in good else []
        commit = next((str(c)[:7] for c in commits if isinstance(c, str) and c), "")
        found.append(Benchmark(name, len(good), commit, values))
    return found, failed


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _median(values: Sequence[float]) -> float:
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def to_bmf(found: Sequence[Benchmark]) -> dict[str, dict[str, dict[str, float]]]:
    """The Bencher Metric Format document: measures by their kebab-case slug
    (``fit-seconds``), each with its value, lower_value and upper_value."""
    return {
        one.name: {
            name.replace("_", "-"): {"value": value, "lower_value": low, "upper_value": high}
            for name, (value, low, high) in one.values.items()
        }
        for one in found
        if one.values
    }


def to_github_action_benchmark(found: Sequence[Benchmark], better: str) -> list[dict[str, Any]]:
    """github-action-benchmark's custom entries for the metrics better ``lower`` or
    ``higher``: one per benchmark and metric, named ``<benchmark> metric=<metric>``."""
    entries = []
    for one in found:
        for column in EXPORTED:
            if column.better != better or column.name not in one.values:
                continue
            value, low, high = one.values[column.name]
            extra = [f"median of {one.runs} repeat(s)"]
            if one.commit:
                extra.append(f"commit: {one.commit}")
            entries.append(
                {
                    "name": f"{one.name} metric={column.name}",
                    "unit": column.unit or "ratio",
                    "value": value,
                    "range": f"{low:.6g} to {high:.6g}",
                    "extra": "\n".join(extra),
                }
            )
    return entries


def write_export(found: Sequence[Benchmark], export_format: str, directory: Path) -> list[Path]:
    """Write ``found`` in ``export_format`` into ``directory`` (atomically); the paths written.
    ExportError when no benchmark has a value to write."""
    if not any(one.values for one in found):
        raise ExportError("no successful run with a measured metric: nothing to export")
    directory.mkdir(parents=True, exist_ok=True)
    if export_format == BMF:
        documents = {layout.BMF_JSON.of(directory): to_bmf(found)}
    else:
        documents = {
            layout.GAB_SMALLER_JSON.of(directory): to_github_action_benchmark(found, LOWER),
            layout.GAB_BIGGER_JSON.of(directory): to_github_action_benchmark(found, HIGHER),
        }
    for path, document in documents.items():
        with atomic_writer(path) as handle:
            json.dump(document, handle, indent=2, allow_nan=False)
            handle.write("\n")
    return list(documents)


def latest_of_machine(runs: pd.DataFrame, machine: str | None) -> pd.DataFrame:
    """A store's runs narrowed to one machine's latest sweep of each configuration.
    ``machine`` may be omitted when the store holds one; ExportError naming them otherwise."""
    keys = series_keys(runs)
    machines = sorted({m for m in keys[MACHINE] if m})
    if machine is None:
        if len(machines) > 1:
            raise ExportError(
                "the store holds runs of several machines; choose one with --machine: "
                + "; ".join(machines)
            )
        chosen = runs
    else:
        chosen = runs[(keys[MACHINE] == machine).to_numpy()]
        if chosen.empty:
            known = "; ".join(machines) or "none"
            raise ExportError(
                f"--machine {machine!r}: no runs of it in the store (its machines: {known})"
            )
    chosen_keys = series_keys(chosen)
    names = [benchmark_name(row) for row in chosen_keys.to_dict("records")]
    started = chosen["sweep_started_at"].astype(str).tolist()
    sweeps = chosen["sweep_id"].astype(str).tolist()
    latest: dict[str, tuple[str, str]] = {}
    for name, start, sweep in zip(names, started, sweeps, strict=True):
        if name not in latest or (start, sweep) > latest[name]:
            latest[name] = (start, sweep)
    keep = [latest[name][1] == sweep for name, sweep in zip(names, sweeps, strict=True)]
    return chosen[keep]
