"""Inference curves: `--inference-batch-sizes` measures throughput and latency per batch size
after training, stores them in runs.csv's `inference_curve`, and inference.png draws them."""

from __future__ import annotations

import textwrap

import click
import numpy as np
import pytest
from helpers import quick
from synthetic_runs import run_row

from mnistbench import record, runner
from mnistbench.cli.run import run
from mnistbench.columns import metric
from mnistbench.errors import ConfigError
from mnistbench.figures import inference
from mnistbench.figures.inference import INFERENCE_COLUMNS, inference_curve_data, plot_inference
from mnistbench.layout import INFERENCE_PNG
from mnistbench.manifest import Manifest
from mnistbench.plan import RunConfig, plan
from mnistbench.report import mnistbench_write_report
from mnistbench.runner import curve_point, measure_inference_curve

POINT_KEYS = ["batch_size", "samples", "seconds", "samples_per_second", "latency_ms"]


# --- one point, and how each is bounded ---------------------------------------------------


def test_a_point_is_samples_over_summed_seconds_and_the_median_call():
    point = curve_point(32, [0.010, 0.030, 0.020, 0.020])
    assert point == {
        "batch_size": 32,
        "samples": 128,
        "seconds": 0.08,
        "samples_per_second": 1600.0,
        "latency_ms": 20.0,
    }


class FakeModel:
    """Records the batches it is asked to predict; takes no time."""

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch)
        return np.zeros((len(batch), 10))


TEST_IMAGES = np.arange(200 * 4, dtype=np.float32).reshape(200, 2, 2)


def test_each_point_times_at_most_2000_images_or_5_calls_after_one_warm_up_call():
    model = FakeModel()
    points = measure_inference_curve(model, TEST_IMAGES, (1, 32, 1024), lambda event: None)
    assert [p["batch_size"] for p in points] == [1, 32, 1024]
    assert [p["samples"] for p in points] == [2000, 1984, 5 * 1024]
    # Per batch size: one warm-up call, then the timed ones, every call a full batch.
    assert len(model.batches) == (1 + 2000) + (1 + 62) + (1 + 5)
    assert {len(b) for b in model.batches[:2001]} == {1}
    assert {len(b) for b in model.batches[2001:2064]} == {32}
    assert {len(b) for b in model.batches[2064:]} == {1024}


def test_a_batch_larger_than_the_test_set_repeats_the_test_images():
    model = FakeModel()
    measure_inference_curve(model, TEST_IMAGES, (512,), lambda event: None)
    assert len(model.batches) == 1 + 5  # 5 × 512 images: at least 5 calls
    timed = model.batches[1]
    assert timed.shape == (512, 2, 2)
    np.testing.assert_array_equal(timed[:200], TEST_IMAGES)
    np.testing.assert_array_equal(timed[200:400], TEST_IMAGES)
    np.testing.assert_array_equal(timed[400:], TEST_IMAGES[:112])


def test_a_point_stops_calling_once_its_time_is_up(monkeypatch):
    monkeypatch.setattr(runner, "CURVE_MAX_SECONDS", 0.0)
    model = FakeModel()
    points = measure_inference_curve(model, TEST_IMAGES, (1, 8), lambda event: None)
    assert [p["samples"] for p in points] == [1, 8]  # one timed call each
    assert len(model.batches) == 4  # and one warm-up call each


# --- the option: plan, manifest, command line, sweep file ------------------------------------


def test_the_plan_gives_every_run_the_sizes_ascending_once_each():
    configs = plan(["dnn", "cnn"], batch_size=[32, 64], inference_batch_sizes=[32, 1, 32, 8])
    assert {config.inference_batch_sizes for config in configs} == {(1, 8, 32)}
    assert len(configs) == 4  # not a grid


def test_the_sizes_do_not_change_the_configuration_id():
    assert RunConfig("dnn", inference_batch_sizes=(1, 32)).config_id == "dnn"
    assert RunConfig("dnn", inference_batch_sizes=(1, 32)).run_id == "dnn-r0"


def test_a_size_below_1_is_refused():
    with pytest.raises(ConfigError) as error:
        plan(["dnn"], inference_batch_sizes=[8, 0])
    assert str(error.value) == "--inference-batch-sizes: every value must be at least 1"


def test_the_manifest_keeps_the_sizes(tmp_path):
    configs = plan(["dnn"], inference_batch_sizes=[1, 32])
    Manifest.create(tmp_path, configs, {})
    loaded = Manifest.load(tmp_path).configs
    assert loaded == configs
    assert loaded[0].inference_batch_sizes == (1, 32)
    assert hash(loaded[0]) == hash(configs[0])


def test_the_command_line_takes_a_comma_separated_list():
    ctx = run.make_context("run", ["dnn", "--inference-batch-sizes", "1,32,1024"])
    assert ctx.params["inference_batch_sizes"] == [1, 32, 1024]


def test_by_default_no_curve_is_measured():
    assert run.make_context("run", ["dnn"]).params["inference_batch_sizes"] == []
    assert RunConfig("dnn").inference_batch_sizes == ()


def test_the_command_line_refuses_a_size_below_1():
    with pytest.raises(click.BadParameter) as error:
        run.make_context("run", ["dnn", "--inference-batch-sizes", "1,0"])
    assert error.value.message == "'1,0': every value must be at least 1"


def test_a_sweep_file_takes_an_array_of_sizes(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(
        textwrap.dedent("""\
        architectures = ["dnn"]
        inference_batch_sizes = [1, 32]
    """)
    )
    ctx = run.make_context("run", ["--config", str(path)])
    assert ctx.params["inference_batch_sizes"] == [1, 32]


def test_the_column_documents_its_form():
    description = metric("inference_curve").description
    assert all(f'"{key}"' in description for key in POINT_KEYS)


# --- the figure's data --------------------------------------------------------------------


def curve(*points: tuple[int, float, float]) -> list[dict]:
    """An inference_curve of (batch_size, samples_per_second, latency_ms) points."""
    return [
        {
            "batch_size": size,
            "samples": 2000,
            "seconds": 2000 / rate,
            "samples_per_second": rate,
            "latency_ms": latency,
        }
        for size, rate, latency in points
    ]


def curve_runs():
    """dnn three times and cnn with a curve each (one cnn run failed), rnn without one."""
    dnn = [
        curve((1, 1000.0, 1.0), (32, 20000.0, 1.6)),
        curve((1, 1200.0, 0.8), (32, 16000.0, 2.0)),
        curve((1, 1100.0, 0.9), (32, 18000.0, 1.8)),
    ]
    return record.frame(
        [
            *(run_row("dnn", i, config_id="dnn", inference_curve=dnn[i]) for i in range(3)),
            run_row("cnn", 0, config_id="cnn", inference_curve=curve((32, 9000.0, 3.5))),
            run_row("cnn", 1, config_id="cnn", error="ValueError: boom"),
            run_row("rnn", 0, config_id="rnn"),  # measured no curve
        ]
    )


def no_curve():
    return record.frame([run_row("dnn", 0, config_id="dnn")])


def test_the_data_is_the_median_and_range_over_repeats_per_batch_size():
    data = inference_curve_data(curve_runs())
    assert list(data.columns) == INFERENCE_COLUMNS
    assert data[["label", "batch_size", "runs"]].values.tolist() == [
        ["dnn", 1, 3],
        ["dnn", 32, 3],
        ["cnn", 32, 1],
    ]
    dnn_32 = data.iloc[1]
    assert (dnn_32.samples_per_second, dnn_32.samples_per_second_min) == (18000.0, 16000.0)
    assert (dnn_32.samples_per_second_max, dnn_32.latency_ms) == (20000.0, 1.8)
    assert (dnn_32.latency_ms_min, dnn_32.latency_ms_max) == (1.6, 2.0)
    assert data.iloc[2].samples_per_second == 9000.0  # the failed cnn run does not count


def test_no_rows_without_a_curve():
    data = inference_curve_data(no_curve())
    assert data.empty
    assert list(data.columns) == INFERENCE_COLUMNS


def test_the_reporter_writes_inference_png_only_when_a_run_has_a_curve(tmp_path):
    with_curve, without = tmp_path / "with", tmp_path / "without"
    with_curve.mkdir()
    without.mkdir()
    written = mnistbench_write_report(curve_runs(), with_curve)
    assert INFERENCE_PNG.of(with_curve) in written
    assert INFERENCE_PNG.of(with_curve).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert INFERENCE_PNG.of(without) not in mnistbench_write_report(no_curve(), without)
    assert not INFERENCE_PNG.of(without).exists()


def test_the_figure_draws_one_line_per_configuration_on_log_axes(tmp_path):
    fig = inference.draw(curve_runs())
    throughput, latency = fig.axes[:2]
    # Lines named "_..." are the hover points, not lines of the legend.
    lines = [line for line in throughput.get_lines() if not line.get_label().startswith("_")]
    assert [line.get_label() for line in lines] == ["dnn", "cnn"]
    assert list(lines[0].get_xdata()) == [1, 32]
    assert list(lines[0].get_ydata()) == [1100.0, 18000.0]
    assert (throughput.get_xscale(), throughput.get_yscale()) == ("log", "log")
    assert throughput.get_ylabel() == "samples / s (log scale)"
    assert latency.get_ylabel() == "ms per call (log scale)"
    assert throughput.get_xlabel() == "inference batch size (images per call)"
    assert "cnn: 1 of 2 runs failed (ValueError: boom)" in fig.get_supxlabel()
    path = plot_inference(curve_runs(), tmp_path / str(INFERENCE_PNG))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- a real sweep ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def curve_sweep(tmp_path_factory, sweep_in_process, tiny_plugins):
    output = tmp_path_factory.mktemp("curves")
    config = quick(inference_batch_sizes=(1, 32, 1024))
    assert plan(["tiny"], inference_batch_sizes=[1024, 1, 32])[0].inference_batch_sizes == (
        config.inference_batch_sizes
    )
    return sweep_in_process(output, [config], tiny_plugins)


def test_a_run_records_one_point_per_batch_size(curve_sweep):
    (run,) = record.read(curve_sweep.output_dir)
    points = run.inference_curve
    assert [list(point) for point in points] == [POINT_KEYS] * 3
    assert [point["batch_size"] for point in points] == [1, 32, 1024]
    # Batch size 1 may stop early on a busy machine (3 s); the others time whole calls.
    assert 1 <= points[0]["samples"] <= 2000
    assert [point["samples"] for point in points[1:]] == [1984, 5 * 1024]
    for point in points:
        assert point["samples_per_second"] == pytest.approx(
            point["samples"] / point["seconds"], rel=1e-3
        )
        # The median call lasts no longer than all calls (up to the rounding of each).
        assert 0 < point["latency_ms"] / 1000 <= point["seconds"] + 1e-6


def test_the_sweep_writes_inference_png(curve_sweep):
    assert INFERENCE_PNG.of(curve_sweep.output_dir) in curve_sweep.reports
    data = inference_curve_data(record.frame(curve_sweep.runs))
    assert data[["label", "batch_size", "runs"]].values.tolist() == [
        ["tiny", 1, 1],
        ["tiny", 32, 1],
        ["tiny", 1024, 1],
    ]
