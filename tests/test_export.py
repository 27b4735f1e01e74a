"""``mnistbench export``: Bencher Metric Format and github-action-benchmark's custom JSON,
checked against the formats as their projects document them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from synthetic_runs import invoke
from test_history import run_row

from mnistbench import record, stores
from mnistbench.builtins import load_plugins
from mnistbench.columns import BY_NAME, HIGHER, LOWER
from mnistbench.exports import NAME_OPTIONS, benchmarks

#: The Bencher Metric Format's JSON Schema, as https://bencher.dev/docs/reference/
#: bencher-metric-format publishes it, with its documented length limits (benchmark names
#: up to 1024 characters, measure slugs up to 64).
BMF_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema",
    "type": "object",
    "patternProperties": {
        "^.{1,1024}$": {
            "type": "object",
            "minProperties": 1,
            "patternProperties": {
                "^[a-z0-9-]{1,64}$": {
                    "type": "object",
                    "properties": {
                        "value": {"type": "number"},
                        "lower_value": {"type": "number"},
                        "upper_value": {"type": "number"},
                    },
                    "required": ["value"],
                    "additionalProperties": False,
                }
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

#: github-action-benchmark's customSmallerIsBetter / customBiggerIsBetter input: "a JSON
#: file containing an array of entries in BenchmarkResult format", BenchmarkResult being
#: ``{name: string; value: number; range?: string; unit: string; extra?: string}``
#: (its src/extract.ts). A null value is charted as 0, so a value must be a number.
GAB_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "value": {"type": "number"},
            "unit": {"type": "string"},
            "range": {"type": "string"},
            "extra": {"type": "string"},
        },
        "required": ["name", "value", "unit"],
        "additionalProperties": False,
    },
}


def sweep(directory: Path, runs) -> Path:
    """A result directory of ``runs`` and an environment naming its commit."""
    directory.mkdir(parents=True)
    record.write(directory / "runs.csv", runs)
    (directory / "environment.json").write_text(json.dumps({"git_commit": "a" * 40}))
    return directory


def exported(directory: Path, export_format: str, output: Path) -> dict[str, object]:
    result = invoke("export", str(directory), "--format", export_format, "-o", str(output))
    assert result.exit_code == 0, result.output
    return {path.name: json.loads(path.read_text()) for path in sorted(output.iterdir())}


RUNS = [
    run_row(fit_seconds=10.0, repeat=0, latency_ms=2.0, inference_samples_per_second=900.0),
    run_row(fit_seconds=12.0, repeat=1, latency_ms=2.5, inference_samples_per_second=800.0),
    run_row(fit_seconds=11.0, repeat=2, latency_ms=None, inference_samples_per_second=850.0),
    run_row("cnn", fit_seconds=30.0),
    run_row("lstm", fit_seconds=None),  # failed: left out, named
]


def test_bmf_follows_bencher_metric_format(tmp_path):
    files = exported(sweep(tmp_path / "out", RUNS), "bmf", tmp_path / "bmf")
    document = files["bmf.json"]
    jsonschema.validate(document, BMF_SCHEMA)
    [dnn] = [name for name in document if name.startswith("dnn[")]
    assert document[dnn]["fit-seconds"] == {"value": 11.0, "lower_value": 10.0, "upper_value": 12.0}
    assert document[dnn]["latency-ms"] == {"value": 2.25, "lower_value": 2.0, "upper_value": 2.5}
    assert sorted(name.split("[")[0] for name in document) == ["cnn", "dnn"]


def test_github_action_benchmark_splits_smaller_and_bigger_is_better(tmp_path):
    files = exported(sweep(tmp_path / "out", RUNS), "github-action-benchmark", tmp_path / "gab")
    assert sorted(files) == [
        "github-action-benchmark-bigger.json",
        "github-action-benchmark-smaller.json",
    ]
    for name, better in (("smaller", LOWER), ("bigger", HIGHER)):
        entries = files[f"github-action-benchmark-{name}.json"]
        jsonschema.validate(entries, GAB_SCHEMA)
        metrics = {entry["name"].rsplit(" metric=", 1)[1] for entry in entries}
        assert metrics and all(BY_NAME[metric].better == better for metric in metrics)
        assert all(math.isfinite(entry["value"]) for entry in entries)
        assert len({entry["name"] for entry in entries}) == len(entries)
    smaller = files["github-action-benchmark-smaller.json"]
    [fit] = [
        e for e in smaller if e["name"].startswith("dnn[") and e["name"].endswith("=fit_seconds")
    ]
    assert (fit["value"], fit["unit"], fit["range"]) == (11.0, "s", "10 to 12")
    assert fit["extra"] == "median of 3 repeat(s)\ncommit: aaaaaaa"


def test_a_metric_not_measured_is_left_out_never_null(tmp_path):
    runs = [run_row(fit_seconds=10.0, latency_ms=None, inference_samples_per_second=None)]
    files = exported(sweep(tmp_path / "out", runs), "github-action-benchmark", tmp_path / "gab")
    text = json.dumps(files)
    assert "null" not in text and "NaN" not in text
    names = [e["name"] for e in files["github-action-benchmark-smaller.json"]]
    assert not any(name.endswith("=latency_ms") for name in names)
    bmf = exported(sweep(tmp_path / "again", runs), "bmf", tmp_path / "bmf")["bmf.json"]
    [measures] = bmf.values()
    assert "latency-ms" not in measures and "null" not in json.dumps(bmf)


def test_a_benchmark_name_carries_the_whole_configuration_and_is_stable_across_sweeps(tmp_path):
    alone = [run_row(fit_seconds=10.0)]
    beside_others = [run_row(fit_seconds=11.0), run_row(backend="jax", fit_seconds=9.0)]
    [first], _ = benchmarks(record.frame(alone))
    found, _ = benchmarks(record.frame(beside_others))
    # The same configuration has the same name whatever else its sweep ran.
    assert first.name in {one.name for one in found}
    assert first.name.startswith("dnn[tensorflow] ")
    for option in NAME_OPTIONS:
        assert f" {option}=" in first.name
    # Two configurations never share one: any option that differs changes it.
    for change in ({"epochs": 2}, {"train_samples": 4000}, {"test_samples": 500}):
        [other], _ = benchmarks(record.frame([run_row(fit_seconds=10.0, **change)]))
        assert other.name != first.name


def test_export_of_a_store_takes_each_configurations_latest_sweep_on_one_machine(tmp_path):
    path = tmp_path / "history.sqlite"
    store = stores.open_store(path, load_plugins(entry_points=False).stores)
    with store.open():
        for day, (machine, seconds) in enumerate(
            [("runner-a", 10.0), ("runner-b", 20.0), ("runner-a", 12.0)]
        ):
            sweep_id = f"s{day}"
            store.record_sweep(
                sweep_id,
                {"machine": {"label": machine}, "git_commit": f"{day}" * 40},
                started_at=f"2026-01-0{day + 1}T00:00:00+00:00",
                output_dir="/x",
            )
            store.record_run(sweep_id, run_row(fit_seconds=seconds))
    several = invoke("export", "--db", str(path), "--format", "bmf", "-o", str(tmp_path / "x"))
    assert (several.exit_code, several.stderr) == (
        2,
        "Error: the store holds runs of several machines; choose one with --machine: "
        "runner-a; runner-b\n",
    )
    result = invoke(
        "export", "--db", str(path), "--machine", "runner-a", "--format", "bmf",
        "-o", str(tmp_path / "a"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [measures] = json.loads((tmp_path / "a" / "bmf.json").read_text()).values()
    assert measures["fit-seconds"]["value"] == 12.0  # the latest sweep of runner-a


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "Error: export: give a result DIRECTORY or --db URL|PATH, one of them\n"),
        (("somewhere", "--machine", "x"), "Error: export: --machine chooses among a store's "
         "machines; add --db\n"),
    ],
)  # fmt: skip
def test_export_user_errors_are_one_line(args, message):
    result = invoke("export", *args, "--format", "bmf")
    assert (result.exit_code, result.stderr) == (2, message)


def test_export_of_a_directory_whose_runs_all_failed_is_one_line(tmp_path):
    directory = sweep(tmp_path / "out", [run_row(fit_seconds=None)])
    result = invoke("export", str(directory), "--format", "bmf")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: no successful run with a measured metric: nothing to export"
    )
