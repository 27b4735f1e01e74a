"""`mnistbench history`: series of sweep medians per configuration, and the steps in them."""

from __future__ import annotations

import io
import math
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import mnistbench
from mnistbench import db
from mnistbench.history import (
    HISTORY_METRICS,
    SERIES_KEY,
    HistoryError,
    check_metric,
    detect_changes,
    load_points,
    parse_since,
    points_from_runs,
    step_positions,
)
from mnistbench.metrics import RUN_COLUMNS
from mnistbench.plots.history import history_data, plot_history

# --- synthetic runs, shaped like db.read_runs ---------------------------------------------

COMMITS = [f"{i:x}" * 40 for i in range(1, 16)]  # 1111..., 2222..., ...


def run_row(
    architecture: str = "dnn",
    *,
    fit_seconds: float | None = 10.0,
    backend: str = "tensorflow",
    epochs: int = 1,
    train_samples: int = 2000,
    test_samples: int = 300,
    repeat: int = 0,
    **metrics,
) -> dict:
    """One run of runs.csv: ok with ``fit_seconds``, failed when it is None."""
    row = dict.fromkeys(RUN_COLUMNS)
    row.update(
        run_id=f"{architecture}-r{repeat}",
        config_id=architecture,
        architecture=architecture,
        plugin=f"mnistbench_{architecture}",
        plugin_version="0.1.0",
        backend=backend,
        executor="local",
        isolation="process",
        cpus_reserved=2,
        epochs=epochs,
        batch_size=32,
        steps_per_execution=1,
        # As results.make_row writes them: Keras' resolved jit for a run that ran, the
        # planned one (None: auto) for a run that failed.
        jit_compile=True if fit_seconds is not None else None,
        train_samples=train_samples,
        test_samples=test_samples,
        seed=repeat,
        repeat=repeat,
        started_at="2025-01-01T00:00:00+00:00",
        status="ok" if fit_seconds is not None else "failed",
        error="" if fit_seconds is not None else "boom",
        fit_seconds=fit_seconds,
        test_accuracy=0.95 if fit_seconds is not None else None,
    )
    row.update(metrics)
    return row


def sweep_rows(index: int, rows: list[dict], *, dirty: bool = False, version="0.1.0") -> list:
    """``rows`` as one sweep's: sweep ``s<index>``, started on day ``index``, at COMMITS[index]."""
    sweep = {
        "sweep_id": f"s{index:02d}",
        "sweep_started_at": f"2025-03-{index + 1:02d}T12:00:00+00:00",
        "git_commit": COMMITS[index],
        "git_dirty": dirty,
        "mnistbench_version": version,
        "cpu_model": "cpu",
        "platform": "linux",
        "python": "3.11",
        "command": "mnistbench run",
        "output_dir": f"/results/s{index}",
    }
    return [{**row, **sweep} for row in rows]


def as_read(rows: list[dict]) -> pd.DataFrame:
    """Rows typed as db.read_runs types them: through CSV text."""
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *db.SWEEP_COLUMNS])
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def series(values, **columns) -> pd.DataFrame:
    """Points of one dnn series, one sweep per value (None: the sweep's run failed); each
    other column of ``columns`` is a list of values of that metric, one per sweep."""
    rows = []
    for i, value in enumerate(values):
        extra = {name: column[i] for name, column in columns.items()}
        rows += sweep_rows(i, [run_row(fit_seconds=value, **extra)])
    return points_from_runs(as_read(rows))


STEP_40 = [10.0, 10.3, 9.8, 10.1, 14.0, 14.3, 13.9, 14.1]
NOISE_5 = [10.0, 10.4, 9.6, 10.3, 9.7, 10.5, 9.5, 10.2]


# --- points ----------------------------------------------------------------------------------


def test_a_point_is_the_median_of_a_sweeps_ok_runs_of_one_configuration():
    rows = sweep_rows(0, [run_row(fit_seconds=s, repeat=i) for i, s in enumerate((9, 10, 20))])
    rows += sweep_rows(
        1, [run_row(fit_seconds=11), run_row(fit_seconds=None, repeat=1)], dirty=True
    )
    points = points_from_runs(as_read(rows))
    assert points[["sweep_id", "fit_seconds", "runs", "commit", "dirty"]].to_dict("records") == [
        {"sweep_id": "s00", "fit_seconds": 10.0, "runs": 3, "commit": "1111111", "dirty": False},
        {"sweep_id": "s01", "fit_seconds": 11.0, "runs": 1, "commit": "2222222", "dirty": True},
    ]
    assert points["started_at"].tolist() == [
        pd.Timestamp("2025-03-01T12:00:00Z"),
        pd.Timestamp("2025-03-02T12:00:00Z"),
    ]
    assert points["series"].nunique() == 1
    assert points["label"].tolist() == ["dnn", "dnn"]
    assert points[["mnistbench_version", "plugin_version"]].iloc[0].tolist() == ["0.1.0", "0.1.0"]
    assert set(SERIES_KEY) <= set(points.columns)
    assert set(HISTORY_METRICS) <= set(points.columns)


def test_a_smoke_sweep_and_a_full_one_are_separate_series_labelled_by_what_differs():
    rows = sweep_rows(0, [run_row(), run_row(epochs=5, train_samples=60000, test_samples=10000)])
    rows += sweep_rows(1, [run_row()])
    points = points_from_runs(as_read(rows))
    assert points.groupby("label", sort=False)["sweep_id"].apply(list).to_dict() == {
        "dnn · 1 epoch · 2,000/300 samples": ["s00", "s01"],
        "dnn · 5 epochs · 60,000/10,000 samples": ["s00"],
    }


def test_the_backend_is_in_the_label_beside_other_backends():
    rows = sweep_rows(0, [run_row(), run_row(backend="jax")])
    assert points_from_runs(as_read(rows))["label"].tolist() == ["dnn (tensorflow)", "dnn (jax)"]


def test_the_series_id_is_stable_and_names_the_architecture():
    first = points_from_runs(as_read(sweep_rows(0, [run_row()])))["series"].iloc[0]
    again = points_from_runs(as_read(sweep_rows(3, [run_row(fit_seconds=2.0)])))["series"].iloc[0]
    assert first == again
    assert first.startswith("dnn-") and len(first) == len("dnn-") + 8


def test_a_sweep_whose_runs_all_failed_is_a_point_without_values():
    points = series([10.0, None, 10.2])
    assert points["series"].nunique() == 1
    assert points["runs"].tolist() == [1, 0, 1]
    assert math.isnan(points["fit_seconds"].iloc[1])


def test_points_are_selected_by_architecture_backend_and_day():
    rows = []
    for i in range(3):
        rows += sweep_rows(i, [run_row(), run_row("cnn"), run_row(backend="jax")])
    runs = as_read(rows)
    assert set(points_from_runs(runs, architectures=["cnn"])["label"]) == {"cnn"}
    jax = points_from_runs(runs, backends=["jax"])
    assert set(jax["backend"]) == {"jax"} and len(jax) == 3
    assert points_from_runs(runs, since=date(2025, 3, 2))["sweep_id"].unique().tolist() == [
        "s01",
        "s02",
    ]
    assert points_from_runs(runs, architectures=["lstm"]).empty


# --- step detection on synthetic values -------------------------------------------------------


def test_a_clean_40_percent_step_is_found_at_its_commit_and_nothing_else():
    changes = detect_changes(series(STEP_40), "fit_seconds")
    assert len(changes) == 1
    change = changes[0]
    assert (change.position, change.from_commit, change.to_commit) == (4, "4444444", "5555555")
    assert change.kind == "regression"
    assert change.before == pytest.approx(10.05)
    assert change.after == pytest.approx(14.05)
    assert change.ratio == pytest.approx(14.05 / 10.05)
    assert change.survives_normalization is None  # no speed probe measured
    assert change.label == "dnn" and change.metric == "fit_seconds"


def test_a_step_down_in_time_is_an_improvement():
    [change] = detect_changes(series([10.0, 10.2, 9.9, 10.1, 6.0, 6.1, 5.9, 6.0]), "fit_seconds")
    assert (change.position, change.kind) == (4, "improvement")


def test_a_step_down_in_a_higher_is_better_metric_is_a_regression():
    accuracy = [0.98, 0.981, 0.979, 0.98, 0.90, 0.901, 0.899, 0.90]
    points = series([10.0] * 8, test_accuracy=accuracy)
    [change] = detect_changes(points, "test_accuracy")
    assert (change.position, change.kind, change.survives_normalization) == (4, "regression", None)


def test_noise_of_five_percent_without_a_step_reports_nothing():
    assert detect_changes(series(NOISE_5), "fit_seconds") == []


def test_two_steps_are_both_found():
    values = [10.0, 10.2, 9.9, 10.1, 14.0, 14.2, 13.9, 14.1, 20.0, 20.3, 19.8, 20.1]
    changes = detect_changes(series(values), "fit_seconds")
    assert [(c.position, c.kind) for c in changes] == [(4, "regression"), (8, "regression")]
    assert changes[1].before == pytest.approx(14.05)


def test_a_series_of_fewer_than_three_points_gives_no_change_and_no_error():
    assert detect_changes(series([10.0, 20.0]), "fit_seconds") == []
    assert step_positions([]) == [] and step_positions([1.0]) == []


def test_failed_sweeps_are_skipped_and_keep_their_place():
    values = [10.0, None, 10.2, 9.9, 10.1, None, 14.0, 14.2, 13.9, 14.1]
    [change] = detect_changes(series(values), "fit_seconds")
    # The change is between sweep 4 and sweep 6: the failed sweep 5 measured nothing.
    assert (change.position, change.from_commit, change.to_commit) == (6, "5555555", "7777777")


def test_a_metric_with_no_values_gives_no_change():
    assert detect_changes(series(STEP_40), "fit_seconds_normalized") == []
    assert detect_changes(series(STEP_40), "latency_ms") == []


def test_a_step_that_also_shows_normalized_survives_normalization():
    probe = [2.0, 2.02, 1.98, 2.0, 2.01, 1.99, 2.0, 2.0]
    normalized = [f / p for f, p in zip(STEP_40, probe, strict=True)]
    points = series(STEP_40, probe_seconds=probe, fit_seconds_normalized=normalized)
    changes = detect_changes(points, "fit_seconds")
    fits = points.groupby("architecture")["fit_seconds"].apply(lambda v: [round(x, 3) for x in v])
    assert len(changes) == 1, (changes, fits.to_dict())
    [change] = changes
    assert change.survives_normalization is True


def test_a_step_that_the_probe_steps_with_does_not_survive_normalization():
    # The machine got 40% slower: the probe steps with the fit time, the ratio stays flat.
    probe = [2.0 * f / 10.0 for f in STEP_40]
    normalized = [f / p for f, p in zip(STEP_40, probe, strict=True)]
    points = series(STEP_40, probe_seconds=probe, fit_seconds_normalized=normalized)
    changes = detect_changes(points, "fit_seconds")
    fits = points.groupby("architecture")["fit_seconds"].apply(lambda v: [round(x, 3) for x in v])
    assert len(changes) == 1, (changes, fits.to_dict())
    [change] = changes
    assert change.survives_normalization is False
    [machine] = detect_changes(points, "probe_seconds")
    assert (machine.position, machine.kind) == (4, "regression")


def test_changes_are_detected_per_series():
    rows = []
    for i, (dnn, cnn) in enumerate(zip(STEP_40, NOISE_5, strict=True)):
        rows += sweep_rows(i, [run_row(fit_seconds=dnn), run_row("cnn", fit_seconds=cnn)])
    changes = detect_changes(points_from_runs(as_read(rows)), "fit_seconds")
    assert [(c.label, c.position) for c in changes] == [("dnn", 4)]


def test_a_dirty_tree_is_marked_in_the_commit():
    rows = []
    for i, value in enumerate(STEP_40):
        rows += sweep_rows(i, [run_row(fit_seconds=value)], dirty=i == 4)
    [change] = detect_changes(points_from_runs(as_read(rows)), "fit_seconds")
    assert (change.from_commit, change.to_commit) == ("4444444", "5555555-dirty")


def test_unknown_metrics_and_bad_dates_are_user_errors():
    assert check_metric("probe_seconds") == "probe_seconds"
    with pytest.raises(HistoryError, match="unknown metric 'speed'"):
        check_metric("speed")
    with pytest.raises(HistoryError, match="unknown metric 'architecture'"):
        check_metric("architecture")  # a column, not a metric
    assert parse_since("2025-03-02") == date(2025, 3, 2)
    with pytest.raises(HistoryError, match="YYYY-MM-DD"):
        parse_since("March")


# --- the figure ------------------------------------------------------------------------------


def test_history_data_marks_the_change_on_its_first_point_after():
    points = series(STEP_40)
    data = history_data(points, "fit_seconds", detect_changes(points, "fit_seconds"))
    assert data["metric"].unique().tolist() == ["fit_seconds"]  # no normalized values: one panel
    assert data["x"].tolist() == list(range(8))
    assert data["change"].tolist() == ["", "", "", "", "regression", "", "", ""]
    assert data["tick"].iloc[4] == "5555555\n2025-03-05"
    assert data["value"].tolist() == STEP_40


def test_history_data_has_a_normalized_panel_when_normalized_values_exist():
    probe = [2.0 * f / 10.0 for f in STEP_40]
    normalized = [f / p for f, p in zip(STEP_40, probe, strict=True)]
    points = series(STEP_40, probe_seconds=probe, fit_seconds_normalized=normalized)
    changes = detect_changes(points, "fit_seconds") + detect_changes(
        points, "fit_seconds_normalized"
    )
    data = history_data(points, "fit_seconds", changes)
    panels = data.groupby("metric", sort=False)["change"].apply(lambda c: sorted(set(c) - {""}))
    assert panels.to_dict() == {"fit_seconds": ["regression"], "fit_seconds_normalized": []}


def test_plot_history_writes_a_png(tmp_path):
    points = series(STEP_40)
    path = plot_history(
        points, "fit_seconds", detect_changes(points, "fit_seconds"), tmp_path / "h.png"
    )
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] >= 1000


# --- the command line on a synthetic database --------------------------------------------------


def write_db(path: Path, sweeps: list[list[dict]]) -> Path:
    """A results database with one sweep per item of ``sweeps`` (rows of :func:`run_row`)."""
    with db.Database(path) as database:
        for i, rows in enumerate(sweeps):
            environment = {
                "git_commit": COMMITS[i],
                "commit_info": {"dirty": False},
                "packages": {"mnistbench": "0.1.0"},
            }
            started = f"2025-03-{i + 1:02d}T12:00:00+00:00"
            database.record_sweep(f"s{i:02d}", environment, started_at=started, output_dir="/x")
            for row in rows:
                database.record_run(f"s{i:02d}", row)
    return path


@pytest.fixture(scope="module")
def step_db(tmp_path_factory) -> Path:
    """dnn steps 40% at the fifth sweep; cnn is noise."""
    sweeps = [
        [run_row(fit_seconds=dnn), run_row("cnn", fit_seconds=cnn)]
        for dnn, cnn in zip(STEP_40, NOISE_5, strict=True)
    ]
    return write_db(tmp_path_factory.mktemp("history") / "results.sqlite", sweeps)


def test_load_points_reads_the_database(step_db):
    points = load_points(step_db, architectures=["dnn"])
    assert points["fit_seconds"].tolist() == STEP_40
    assert points["commit"].tolist() == [c[:7] for c in COMMITS[:8]]


def test_history_command_prints_the_series_and_the_change(cli, step_db, tmp_path):
    result = cli("history", "--db", str(step_db), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "1 change(s) detected: 1 regression(s), 0 improvement(s)." in result.stdout
    [line] = [line for line in result.stdout.splitlines() if "4444444..5555555" in line]
    assert line.split()[:3] == ["regression", "dnn", "fit_seconds"]
    assert "1.40× (+40%)" in line
    assert (tmp_path / "history.png").is_file()
    assert f"wrote {tmp_path / 'history.png'}" in result.stderr


def test_history_command_selects_and_writes_the_png_where_asked(cli, step_db, tmp_path):
    png = tmp_path / "figure" / "cnn.png"
    result = cli("history", "--db", str(step_db), "--arch", "cnn", "--png", str(png))
    assert result.returncode == 0, result.stderr
    assert "0 change(s) detected" in result.stdout
    assert "dnn" not in result.stdout
    assert png.is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--metric", "speed"), "Error: unknown metric 'speed'; choose one of: fit_seconds, "),
        (("--since", "yesterday"), "Error: --since 'yesterday': not a date, give YYYY-MM-DD"),
        (("--arch", "lstm"), "no runs match architecture lstm"),
        (("--metric", "test_accuracy", "--normalized"), "test_accuracy has no normalized column"),
    ],
)
def test_history_user_errors_are_one_line_with_exit_2(cli, step_db, tmp_path, args, message):
    result = cli("history", "--db", str(step_db), "--output", str(tmp_path), *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_history_without_a_database_is_a_user_error(cli, tmp_path):
    result = cli("history", "--db", str(tmp_path / "none.sqlite"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'none.sqlite'}: not found; `mnistbench run` or "
        "`mnistbench db import` writes it"
    ]


def test_history_of_an_empty_database_says_how_to_fill_it(cli, tmp_path):
    empty = write_db(tmp_path / "empty.sqlite", [])
    result = cli("history", "--db", str(empty), "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{empty} holds no runs yet: `mnistbench run` records each sweep in it, "
        "`mnistbench db import DIR` adds earlier ones."
    )


# --- end to end: real sweeps across commits ---------------------------------------------------

#: Seconds ``sleepy``'s fit takes before and after the change at commit 5 (a 40% step);
#: ``steady``'s always the first; each run within ±NOISE of its level.
SLEEP_BEFORE, SLEEP_AFTER = 1.5, 2.1
NOISE = 0.03
SWEEPS = 8
CHANGED_AT = 4  # the fifth commit makes fit take longer


class VirtualClock:
    """The runner's clock in the end-to-end test: 1 ms a reading, plus the time the test
    architectures "sleep". Their fit times are then what the test says, with a seeded
    noise, whatever else runs on the machine: the test is about finding the step, and a
    real clock on a busy machine puts steps of its own into the history."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.001
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Sleepy:
    """``sleepy`` and ``steady``: a small dense model whose ``fit`` first "sleeps" on the
    virtual clock; sleepy's seconds are read from ``sleep.txt`` in the working directory,
    once per commit; each run's are off by a seeded noise of at most :data:`NOISE`."""

    def __init__(self, clock: VirtualClock) -> None:
        import random

        self.clock = clock
        self.noise = random.Random(0)

    @mnistbench.hookimpl
    def mnistbench_register_architectures(self, register):
        register("sleepy", description="sleeps before training, as sleep.txt says")
        register("steady", description="sleeps before training, always as long")

    @mnistbench.hookimpl
    def mnistbench_build_model(self, architecture, input_shape, num_classes):
        if architecture not in ("sleepy", "steady"):
            return None
        import keras

        level = float(Path("sleep.txt").read_text()) if architecture == "sleepy" else SLEEP_BEFORE
        delay, clock = level * (1 + self.noise.uniform(-NOISE, NOISE)), self.clock

        class SleepyModel(keras.Sequential):
            def fit(self, *args, **kwargs):
                clock.sleep(delay)
                return super().fit(*args, **kwargs)

        model = SleepyModel(
            [keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(num_classes)]
        )
        model.compile(
            "adam",
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        return model


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout.strip()


def test_history_finds_the_commit_that_slowed_training(
    tmp_path, monkeypatch, sweep_in_process, cli
):
    from mnistbench.plan import plan
    from mnistbench.plugins import load_plugins

    repo, database = tmp_path / "repo", tmp_path / "results.sqlite"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    monkeypatch.chdir(repo)
    clock = VirtualClock()
    monkeypatch.setattr("mnistbench.runner.time", clock)
    plugins = load_plugins(extra=[Sleepy(clock)])
    # The history is what this test is about: the sweeps' reports are left out.
    monkeypatch.setattr(plugins, "write_report", lambda runs, output_dir: [])
    configs = plan(["sleepy", "steady"], epochs=1, batch_size=128, train_limit=128, test_limit=64)
    commits = []
    for i in range(SWEEPS):
        (repo / "sleep.txt").write_text(str(SLEEP_AFTER if i >= CHANGED_AT else SLEEP_BEFORE))
        (repo / f"sweep-{i}.txt").write_text(f"sweep {i}\n")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"sweep {i}")
        commits.append(git(repo, "rev-parse", "--short=7", "HEAD"))
        sweep_in_process(tmp_path / f"out-{i}", configs, plugins, db=database)

    points = load_points(database)
    assert points.groupby("architecture")["commit"].apply(list).to_dict() == {
        "sleepy": commits,
        "steady": commits,
    }
    assert set(points["runs"]) == {1}
    changes = detect_changes(points, "fit_seconds")
    fits = points.groupby("architecture")["fit_seconds"].apply(lambda v: [round(x, 3) for x in v])
    assert len(changes) == 1, (changes, fits.to_dict())
    [change] = changes
    assert change.label == "sleepy"
    assert (change.position, change.from_commit, change.to_commit, change.kind) == (
        CHANGED_AT,
        commits[CHANGED_AT - 1],
        commits[CHANGED_AT],
        "regression",
    )
    assert change.ratio == pytest.approx(SLEEP_AFTER / SLEEP_BEFORE, rel=2 * NOISE)

    pages = tmp_path / "pages"
    result = cli("history", "--db", str(database), "--output", str(tmp_path), "--html", str(pages))
    assert result.returncode == 0, result.stderr
    index = (pages / "index.html").read_text()
    assert f"{commits[CHANGED_AT - 1]}" in index and f"{commits[CHANGED_AT]}" in index
    assert len(list(pages.glob("config-*.html"))) == 2
    assert "1 change(s) detected: 1 regression(s), 0 improvement(s)." in result.stdout
    [line] = [line for line in result.stdout.splitlines() if ".." in line and "fit_seconds" in line]
    assert line.split()[:4] == [
        "regression",
        "sleepy",
        "fit_seconds",
        f"{commits[CHANGED_AT - 1]}..{commits[CHANGED_AT]}",
    ]
