"""`mnistbench history`: series of sweep medians per configuration, and the steps in them."""

from __future__ import annotations

import math
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from synthetic_runs import blank, invoke, png

import mnistbench
from mnistbench import record, stores
from mnistbench.builtins import load_plugins
from mnistbench.figures import history as history_figure
from mnistbench.figures import style
from mnistbench.figures.history import history_data, plot_history
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
from mnistbench.record import Run

# --- synthetic runs, typed as Store.read_runs types them ---------------------------------------

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
    batch_size: int = 32,
    **metrics,
) -> Run:
    """One run's record: ok with ``fit_seconds``, failed when it is None."""
    ok = fit_seconds is not None
    config_id = architecture if batch_size == 32 else f"{architecture}-b{batch_size}"
    return record.new_run(
        run_id=f"{config_id}-r{repeat}",
        config_id=config_id,
        architecture=architecture,
        plugin=f"mnistbench_{architecture}",
        plugin_version="0.1.0",
        backend=backend,
        executor="local",
        isolation="process",
        cpus_reserved=2,
        epochs=epochs,
        batch_size=batch_size,
        steps_per_execution=1,
        # As worker.run_record makes them: Keras' resolved jit for a run that ran, the
        # planned one (None: auto) for a run that failed.
        jit_compile=True if ok else None,
        train_samples=train_samples,
        test_samples=test_samples,
        seed=repeat,
        repeat=repeat,
        started_at="2025-01-01T00:00:00+00:00",
        status="ok" if ok else "failed",
        error="" if ok else "boom",
        fit_seconds=fit_seconds,
        **{"test_accuracy": 0.95 if ok else None, **metrics},
    )


def sweep_rows(
    index: int, runs: list[Run], *, dirty: bool = False, version="0.1.0"
) -> list[tuple[Run, dict]]:
    """``runs`` as one sweep's: sweep ``s<index>``, started on day ``index``, at COMMITS[index],
    each with the sweep's columns as Store.read_runs joins them."""
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
    return [(run, sweep) for run in runs]


def as_read(rows: list[tuple[Run, dict]]) -> pd.DataFrame:
    """The runs and their sweeps' columns as Store.read_runs types them."""
    return record.frame([run for run, _ in rows], extra=[sweep for _, sweep in rows])


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


def test_ticks_of_sweeps_of_one_commit_on_one_day_tell_them_apart():
    rows = []
    starts = ["2025-03-01T09:00:00", "2025-03-01T12:00:05", "2025-03-01T12:00:40", "2025-03-02"]
    for i, started in enumerate(starts):
        [(run, sweep)] = sweep_rows(i, [run_row(fit_seconds=10.0)])
        started = f"{started}T08:00:00" if "T" not in started else started
        rows.append(
            (run, {**sweep, "sweep_started_at": f"{started}+00:00", "git_commit": "c0ffee1"})
        )
    ticks = [
        tick for _, tick in history_figure.sweep_ticks(points_from_runs(as_read(rows))).values()
    ]
    assert ticks == [
        "c0ffee1\n2025-03-01 09:00",
        "c0ffee1\n2025-03-01 12:00:05",
        "c0ffee1\n2025-03-01 12:00:40",
        "c0ffee1\n2025-03-02",
    ]


def test_a_history_of_sweeps_that_measured_nothing_is_a_notice_saying_why():
    fig = history_figure.draw(series([None, None]), "fit_seconds", [])  # every run failed
    assert [t.get_text() for t in fig.axes[0].texts] == [
        "No sweep measured fit_seconds: every run of these sweeps failed,\n"
        "or none recorded it (a normalized figure needs the speed probe)."
    ]


def test_the_normalized_panel_says_its_values_are_relative_to_the_probe():
    probe = [2.0 * f / 10.0 for f in STEP_40]
    normalized = [f / p for f, p in zip(STEP_40, probe, strict=True)]
    points = series(STEP_40, probe_seconds=probe, fit_seconds_normalized=normalized)
    raw, relative = history_figure.draw(points, "fit_seconds", []).axes
    assert raw.get_ylabel() == "fit_seconds (s)"
    assert relative.get_ylabel() == "fit_seconds_normalized\n(relative to the speed probe)"


def test_history_png_draws_the_series_and_marks_the_change(tmp_path):
    points = series(STEP_40)
    changes = detect_changes(points, "fit_seconds")
    path = plot_history(points, "fit_seconds", changes, tmp_path / "h.png")
    image = png(path)
    # 8 sweeps fit the minimum width (10 in), one panel 3.6 in plus 1.2 in, at 120 dpi.
    assert (image.format, image.size) == ("PNG", (1200, 576))
    assert not blank(image)
    fig = history_figure.draw(points, "fit_seconds", changes)
    [ax] = fig.axes
    assert ax.get_title(loc="left") == "fit_seconds: lower is better"
    assert [t.get_text() for t in ax.texts] == ["regression +40%"]
    assert [t.get_text() for t in ax.get_xticklabels()][4] == "5555555\n2025-03-05"
    # Each point carries its sweep and value for the history pages' hover.
    tips = list(style.tips(fig).values())
    assert len(tips) == 8
    assert tips[4].splitlines() == [
        "dnn: 14.0 s (1 run)",
        "2025-03-05 12:00 UTC · commit 5555555",
        "mnistbench 0.1.0 · plugin 0.1.0",
        "sweep s04",
    ]


# --- the command line on a synthetic database --------------------------------------------------


def opened(path: Path) -> stores.Store:
    """The results store at ``path``, through mnistbench's own registered stores."""
    return stores.open_store(path, load_plugins(entry_points=False).stores)


def write_db(path: Path, sweeps: list[list[Run]]) -> Path:
    """A results store with one sweep per item of ``sweeps`` (records of :func:`run_row`)."""
    with opened(path).open() as database:
        for i, runs in enumerate(sweeps):
            environment = {
                "git_commit": COMMITS[i],
                "commit_info": {"dirty": False},
                "packages": {"mnistbench": "0.1.0"},
            }
            started = f"2025-03-{i + 1:02d}T12:00:00+00:00"
            database.record_sweep(f"s{i:02d}", environment, started_at=started, output_dir="/x")
            for run in runs:
                database.record_run(f"s{i:02d}", run)
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
    points = load_points(opened(step_db), architectures=["dnn"])
    assert points["fit_seconds"].tolist() == STEP_40
    assert points["commit"].tolist() == [c[:7] for c in COMMITS[:8]]


def test_history_command_prints_the_series_and_the_change(step_db, tmp_path):
    result = invoke("history", "--db", str(step_db), "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "1 change(s) detected: 1 regression(s), 0 improvement(s)." in result.stdout
    [line] = [line for line in result.stdout.splitlines() if "4444444..5555555" in line]
    assert line.split()[:3] == ["regression", "dnn", "fit_seconds"]
    assert "1.40× (+40%)" in line
    assert f"wrote {tmp_path / 'history.png'}" in result.stderr
    # The figure of both series, its change marked: as plot_history draws it.
    points = load_points(opened(step_db))
    expected = plot_history(
        points, "fit_seconds", detect_changes(points, "fit_seconds"), tmp_path / "expected.png"
    )
    written = png(tmp_path / "history.png")
    assert written.size == (1200, 576) and not blank(written)
    assert written.tobytes() == png(expected).tobytes()


def test_history_command_selects_and_writes_the_png_where_asked(step_db, tmp_path):
    path = tmp_path / "figure" / "cnn.png"
    result = invoke("history", "--db", str(step_db), "--arch", "cnn", "--png", str(path))
    assert result.exit_code == 0, result.output
    assert "0 change(s) detected" in result.stdout
    assert "dnn" not in result.stdout
    # Only cnn's series, no change marked.
    points = load_points(opened(step_db), architectures=["cnn"])
    expected = plot_history(points, "fit_seconds", [], tmp_path / "expected.png")
    assert png(path).tobytes() == png(expected).tobytes()
    assert not blank(png(path))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--metric", "speed"), "Error: unknown metric 'speed'; choose one of: fit_seconds, "),
        (("--since", "yesterday"), "Error: --since 'yesterday': not a date, give YYYY-MM-DD"),
        (("--arch", "lstm"), "no runs match architecture lstm"),
        (("--metric", "test_accuracy", "--normalized"), "test_accuracy has no normalized column"),
    ],
)
def test_history_user_errors_are_one_line_with_exit_2(step_db, tmp_path, args, message):
    result = invoke("history", "--db", str(step_db), "--output", str(tmp_path), *args)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_history_without_a_database_is_a_user_error(tmp_path):
    result = invoke("history", "--db", str(tmp_path / "none.sqlite"))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'none.sqlite'}: not found; `mnistbench run` or "
        "`mnistbench db import` writes it"
    ]


def test_history_of_an_empty_database_says_how_to_fill_it(tmp_path):
    empty = write_db(tmp_path / "empty.sqlite", [])
    result = invoke("history", "--db", str(empty), "--output", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"{empty} holds no runs yet: `mnistbench run` records each sweep in it, "
        "`mnistbench db import DIR` adds earlier ones."
    )


# --- end to end: real sweeps across commits ---------------------------------------------------

#: Seconds ``sleepy``'s fit takes before and after the change at the third commit (a 40%
#: step); ``steady``'s always the first; each run within ±NOISE of its level.
SLEEP_BEFORE, SLEEP_AFTER = 1.5, 2.1
NOISE = 0.03
#: Sweeps, one per commit: two before the change, two after (a change needs two points on
#: each side: one odd sweep is no change).
SWEEPS = 4
CHANGED_AT = 2  # the third commit makes fit take longer


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
    """``sleepy`` and ``steady``: a logistic regression whose ``fit`` first "sleeps" on the
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
        from helpers import logistic_regression

        level = float(Path("sleep.txt").read_text()) if architecture == "sleepy" else SLEEP_BEFORE
        delay, clock = level * (1 + self.noise.uniform(-NOISE, NOISE)), self.clock
        model = logistic_regression(input_shape, num_classes)
        fit = model.fit

        def sleepy_fit(*args, **kwargs):
            clock.sleep(delay)
            return fit(*args, **kwargs)

        model.fit = sleepy_fit
        return model


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30
    )
    return result.stdout.strip()


def test_history_finds_the_commit_that_slowed_training(tmp_path, monkeypatch, sweep_in_process):
    from helpers import QUICK

    from mnistbench.plan import plan

    repo, database = tmp_path / "repo", tmp_path / "results.sqlite"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    monkeypatch.chdir(repo)
    clock = VirtualClock()
    monkeypatch.setattr("mnistbench.runner.time", clock)
    # The speed probe is not what this test is about: a machine of constant speed, at once.
    monkeypatch.setattr("mnistbench.worker.measure_probe", lambda: 0.5)
    plugins = load_plugins(extra=[Sleepy(clock)], entry_points=False)
    # The history is what this test is about: the sweeps' reports are left out.
    monkeypatch.setattr(plugins, "write_report", lambda runs, output_dir: [])
    configs = plan(["sleepy", "steady"], **{**QUICK, "test_limit": 32}, batch_size=128)
    commits = []
    for i in range(SWEEPS):
        (repo / "sleep.txt").write_text(str(SLEEP_AFTER if i >= CHANGED_AT else SLEEP_BEFORE))
        (repo / f"sweep-{i}.txt").write_text(f"sweep {i}\n")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", f"sweep {i}")
        commits.append(git(repo, "rev-parse", "--short=7", "HEAD"))
        sweep_in_process(tmp_path / f"out-{i}", configs, plugins, db=database, probe=True)

    # Each sweep is recorded with its commit, and the sweeps of a configuration are one series.
    points = load_points(opened(database))
    assert points.groupby("architecture")["commit"].apply(list).to_dict() == {
        "sleepy": commits,
        "steady": commits,
    }
    assert points["series"].nunique() == 2
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
    assert change.survives_normalization is True  # the machine's speed did not change

    pages = tmp_path / "pages"
    result = invoke(
        "history", "--db", str(database), "--output", str(tmp_path), "--html", str(pages)
    )
    assert result.exit_code == 0, result.output
    index = (pages / "index.html").read_text()
    assert f"{commits[CHANGED_AT - 1]} → {commits[CHANGED_AT]}" in index
    assert len(list(pages.glob("config-*.html"))) == 2
    assert "1 change(s) detected: 1 regression(s), 0 improvement(s)." in result.stdout
    [line] = [line for line in result.stdout.splitlines() if ".." in line and "fit_seconds" in line]
    assert line.split()[:4] == [
        "regression",
        "sleepy",
        "fit_seconds",
        f"{commits[CHANGED_AT - 1]}..{commits[CHANGED_AT]}",
    ]
