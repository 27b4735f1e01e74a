"""Every column of ``runs.csv`` once: its name, meaning, unit, better direction and format.

This is the one place a metric is declared. ``runs.csv``'s column order, the
headline figures of ``comparison.csv``, the metrics ``mnistbench compare`` tests and
gates, the terminal tables, the ``extra_info`` of ``pytest-benchmark.json`` and the
column reference in ``docs/columns.md`` are all read from :data:`COLUMNS`. Adding a
metric is one entry here (plus the code that measures it).

``python -m mnistbench.metrics`` prints ``docs/columns.md``; a test checks that the
file is up to date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Views a column can appear in (``Column.views``).
HEADLINE = "headline"  # comparison.csv: median, spread and ratio to best per configuration
COMPARED = "compared"  # mnistbench compare: tested and gated with --fail
EXTRA_INFO = "extra_info"  # pytest-benchmark.json: median in each benchmark's extra_info

LOWER = "lower"
HIGHER = "higher"


@dataclass(frozen=True)
class Column:
    """One column of ``runs.csv``.

    :param name: the column's name, with its unit in it where it has one.
    :param description: one line for the column reference.
    :param unit: the unit values are in (``s``, ``ms``, ``samples/s``, ``MB``,
        ``FLOP/s``, ``FLOPs``), "" when unitless.
    :param better: ``"lower"`` or ``"higher"`` for a metric; None for a column
        that describes a run rather than measures it.
    :param views: where the metric appears besides ``runs.csv`` (:data:`HEADLINE`,
        :data:`COMPARED`, :data:`EXTRA_INFO`).
    :param summary: its header in the terminal's summary table, "" when not shown.
    :param spec: the format spec of its values in tables (``".1f"``).
    """

    name: str
    description: str
    unit: str = ""
    better: str | None = None
    views: frozenset[str] = frozenset()
    summary: str = ""
    spec: str = ""

    @property
    def is_metric(self) -> bool:
        return self.better is not None

    def format(self, value: float, *, signed: bool = False) -> str:
        """A value with its unit for messages: ``12.3 s``, ``41,200 samples/s``, ``0.9812``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        sign = "+" if signed else ""
        if self.unit == "s":
            digits = 2 if abs(value) < 10 else (1 if abs(value) < 100 else 0)
            return f"{value:{sign}.{digits}f} s"
        if self.unit == "samples/s":
            return f"{value:{sign},.0f} samples/s"
        if self.unit == "ms":
            return f"{value:{sign}.3g} ms"
        if self.unit == "MB":
            return f"{value:{sign},.1f} MB"
        if self.unit in ("FLOP/s", "FLOPs"):
            return f"{value:{sign}.3g} {self.unit}"
        return f"{value:{sign}.4f}"


def _metric(name, description, unit, better, *views, summary="", spec=""):
    return Column(name, description, unit, better, frozenset(views), summary, spec)


_HC = (HEADLINE, COMPARED)

#: Every column of ``runs.csv``, in file order.
COLUMNS: tuple[Column, ...] = (
    Column(
        "run_id",
        "`<config_id>-r<repeat>`, with the backend when one was named: "
        "unique within one output directory",
        summary="run",
    ),
    Column(
        "config_id",
        "the architecture plus its non-default execution options "
        "(`dnn`, `dnn-spe32-jiton`); repeats share it",
    ),
    Column("architecture", "the registered architecture that ran"),
    Column("plugin", "the plugin (entry-point name) that registered the architecture"),
    Column("plugin_version", "the version of the distribution that ships the plugin"),
    Column("backend", "the Keras backend (`tensorflow`, `jax`, `torch`)"),
    Column("backend_version", "the version of the backend's package"),
    Column(
        "isolation", "`process` (a fresh worker per run) or `none` (in the `mnistbench` process)"
    ),
    Column("executor", "`local` or `ray`"),
    Column("node", "host name of the machine that ran it"),
    Column(
        "cpus_reserved",
        "CPUs reserved for the run (local: all of the machine's; Ray: "
        "`--cpus-per-run`); its thread pools are limited to them",
    ),
    Column(
        "device",
        "the device the model's weights lived on while it trained: `cpu`, or "
        "`<kind>:<index> <name>` (`gpu:0 NVIDIA H200`)",
    ),
    Column(
        "devices",
        'JSON list of the devices the run\'s backend saw, accelerators first, each `{"kind": '
        '"gpu", "name": "NVIDIA H200", "memory_mb": 143771.0}`; `memory_mb` is null where the '
        "backend does not tell it; the `cpu` entry is named by the CPU model and holds the "
        "machine's physical memory",
    ),
    Column("epochs", "epochs trained (fewer than `--epochs` when a target stopped it)"),
    Column("batch_size", "batch size for training, evaluation and inference timing"),
    Column("steps_per_execution", "batches per compiled call (Keras `compile` option)"),
    Column("jit_compile", "XLA compilation as Keras resolved it: True or False"),
    Column("train_samples", "training images used"),
    Column("test_samples", "test images used"),
    Column("seed", "the run's seed: `--seed` + `repeat`"),
    Column("repeat", "0-based repeat index"),
    Column("target_accuracy", "`--target-accuracy`; empty when unused"),
    Column("eval_every", "`--eval-every` steps between target evaluations; empty = every epoch"),
    _metric(
        "fit_seconds",
        "wall time of `model.fit`, all epochs (target evaluations included)",
        "s",
        LOWER,
        *_HC,
        summary="fit s",
        spec=".1f",
    ),
    _metric(
        "first_epoch_seconds",
        "epoch 1, which includes tracing and compilation",
        "s",
        LOWER,
        *_HC,
        summary="ep1 s",
        spec=".2f",
    ),
    _metric(
        "steady_epoch_seconds",
        "mean of epochs 2..n (empty with one epoch)",
        "s",
        LOWER,
        *_HC,
        summary="ep2+ s",
        spec=".2f",
    ),
    _metric("seconds_per_epoch", "mean of all epochs", "s", LOWER, HEADLINE),
    Column("epoch_seconds", "JSON list: seconds of each epoch", "s"),
    Column("epoch_accuracy", "JSON list: training accuracy at the end of each epoch"),
    Column("epoch_loss", "JSON list: training loss at the end of each epoch"),
    _metric(
        "time_to_accuracy_seconds",
        "from the start of `fit` to the evaluation that "
        "reached `--target-accuracy`, evaluation time included; empty when not reached",
        "s",
        LOWER,
        *_HC,
    ),
    Column(
        "converged", "True/False when a target was set (whether it was reached); empty otherwise"
    ),
    _metric(
        "train_samples_per_second",
        "`train_samples × epochs / fit_seconds`",
        "samples/s",
        HIGHER,
        *_HC,
    ),
    _metric(
        "test_accuracy",
        "accuracy on the test images after training",
        "",
        HIGHER,
        *_HC,
        EXTRA_INFO,
        summary="acc",
        spec=".4f",
    ),
    _metric("test_loss", "loss on the test images after training", "", LOWER, *_HC, EXTRA_INFO),
    _metric(
        "inference_samples_per_second",
        "`model.predict` over all test images at `batch_size`, after a warm-up call",
        "samples/s",
        HIGHER,
        *_HC,
        summary="infer/s",
        spec=",.0f",
    ),
    _metric(
        "latency_ms",
        "single-image prediction (`predict_on_batch`, the tutorial's "
        "`sample_prediction`): median of 100 calls after 5 warm-up calls",
        "ms",
        LOWER,
        *_HC,
        summary="p50 ms",
        spec=".2f",
    ),
    _metric("latency_p95_ms", "95th percentile of the same 100 calls", "ms", LOWER, *_HC),
    _metric("latency_p99_ms", "99th percentile of the same 100 calls", "ms", LOWER, HEADLINE),
    Column(
        "inference_curve",
        "JSON list, one point per `--inference-batch-sizes` value, ascending: "
        '`{"batch_size": 32, "samples": 1984, "seconds": 0.05, "samples_per_second": 39680.0, '
        '"latency_ms": 0.8}`; measured after training with `predict_on_batch` on test images '
        "(repeated when the test set is smaller), after one warm-up call, for at most 2,000 "
        "images (at least 5 calls) or until 3 s have passed; `seconds`: the timed calls' sum; "
        "`latency_ms`: median seconds per call × 1000. Empty without the option",
    ),
    Column("sample_predictions", "JSON list: predicted labels of the digits in `samples.npz`"),
    _metric("params", "the model's parameter count (trainable and not)", "", LOWER, HEADLINE),
    Column(
        "inference_flops_per_sample",
        "analytic, from the model's layers (a multiply-add counts 2)",
        "FLOPs",
    ),
    Column("train_flops_per_sample", "analytic: 3 × inference (forward plus backward)", "FLOPs"),
    _metric(
        "train_flops_per_second",
        "achieved: train FLOPs per sample × samples per second of the steady-state epochs",
        "FLOP/s",
        HIGHER,
        HEADLINE,
    ),
    Column(
        "inference_flops_per_second",
        "achieved: inference FLOPs per sample × `inference_samples_per_second`",
        "FLOP/s",
    ),
    Column(
        "peak_flops_per_second",
        "the peak available to this run: best of 5 float32 "
        "2048×2048 matmuls on its backend, measured in a worker under the run's thread "
        "limit, once per node, backend and CPU reservation",
        "FLOP/s",
    ),
    _metric(
        "train_peak_fraction",
        "`train_flops_per_second / peak_flops_per_second`",
        "",
        HIGHER,
        HEADLINE,
    ),
    _metric(
        "inference_peak_fraction",
        "`inference_flops_per_second / peak_flops_per_second`",
        "",
        HIGHER,
        HEADLINE,
    ),
    _metric(
        "peak_memory_mb",
        "peak resident memory of the worker process that ran it "
        "(data, backend and model included); with `--isolation none`, of the whole "
        "`mnistbench` process so far",
        "MB",
        LOWER,
        *_HC,
        EXTRA_INFO,
        summary="peak MB",
        spec=",.0f",
    ),
    _metric(
        "peak_accelerator_memory_mb",
        "peak memory the backend allocated on the accelerator the run trained on "
        "(TensorFlow `get_memory_info(...)['peak']`, JAX `memory_stats()['peak_bytes_in_use']`, "
        "`torch.cuda.max_memory_allocated`); empty on a CPU",
        "MB",
        LOWER,
    ),
    Column(
        "probe_version",
        "version of the speed probe's workload; probe times compare only within one version",
    ),
    Column(
        "probe_seconds_before",
        "the speed probe just before the run: median of its timed repeats of a fixed small "
        "training workload, in the run's worker, under its thread limit, on its backend",
        "s",
    ),
    Column("probe_seconds_after", "the same probe just after the run", "s"),
    _metric(
        "probe_seconds",
        "mean of `probe_seconds_before` and `probe_seconds_after`: how fast the machine was "
        "for this run (lower: faster)",
        "s",
        LOWER,
        HEADLINE,
        EXTRA_INFO,
    ),
    Column(
        "machine_changed",
        "True when the two probes differ by more than 10%: the machine's speed changed "
        "during the run, and its normalized figures are doubtful",
    ),
    _metric(
        "fit_seconds_normalized",
        "`fit_seconds / probe_seconds`: fit time in units of the probe's time; two runs "
        "compare by the ratio of their normalized values",
        "",
        LOWER,
    ),
    _metric(
        "steady_epoch_seconds_normalized",
        "`steady_epoch_seconds / probe_seconds`",
        "",
        LOWER,
    ),
    _metric(
        "inference_samples_per_second_normalized",
        "`inference_samples_per_second × probe_seconds`: the inverse of the test set's "
        "inference time in units of the probe",
        "",
        HIGHER,
    ),
    _metric(
        "latency_ms_normalized",
        "`latency_ms / probe_seconds`",
        "",
        LOWER,
    ),
    Column(
        "fit_cpu_seconds",
        "CPU time (user + system) of the run's process during `fit`, all threads; "
        "against `fit_seconds`, the cores it kept busy",
        "s",
    ),
    Column(
        "inference_cpu_seconds",
        "CPU time (user + system) of the run's process while inference was timed (warm-up, "
        "the test-set predict and the latency calls)",
        "s",
    ),
    Column(
        "fit_involuntary_switches",
        "involuntary context switches of the run's process during `fit`: the scheduler "
        "took its CPU away (contention)",
    ),
    Column(
        "fit_cpu_pressure_seconds",
        "time some task waited for a CPU during `fit`, from Linux PSI "
        "(`/proc/pressure/cpu`), machine-wide; empty where the system has no PSI",
        "s",
    ),
    Column(
        "fit_steal_seconds",
        "CPU time the hypervisor gave to other guests during `fit`, summed over CPUs "
        "(`/proc/stat` steal); empty where the system does not report it",
        "s",
    ),
    Column(
        "status",
        "`ok`; `failed` (error, crashed or killed worker, timeout), `diverged` "
        "(NaN/inf loss) or `interrupted`",
        summary="status",
    ),
    Column("error", "one line; empty when `status` is `ok`"),
    Column("started_at", "UTC start time, ISO 8601"),
)

BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}

#: The columns of ``runs.csv``, in order.
RUN_COLUMNS: list[str] = [column.name for column in COLUMNS]


def in_view(view: str) -> list[Column]:
    """The metrics shown in ``view`` (:data:`HEADLINE`, :data:`COMPARED`, ...), in file order."""
    return [column for column in COLUMNS if view in column.views]


def metric(name: str) -> Column:
    """The column called ``name``; KeyError if there is none."""
    return BY_NAME[name]


def normalized(name: str) -> str | None:
    """The name of ``name``'s normalized form (``fit_seconds_normalized``: divided by the
    run's speed probe, see :mod:`mnistbench.probe`), None when it has none."""
    return f"{name}_normalized" if f"{name}_normalized" in BY_NAME else None


def columns_markdown() -> str:
    """The column reference, ``docs/columns.md``: one table row per column of ``runs.csv``."""
    lines = [
        "# The columns of `runs.csv`",
        "",
        "Generated from `mnistbench/metrics.py` by `python -m mnistbench.metrics`; "
        "do not edit by hand.",
        "",
        "`better` says which direction is an improvement for a metric; `views` where it "
        "appears besides `runs.csv`: `headline` in `comparison.csv` (median, spread and "
        "ratio to best), `compared` in `mnistbench compare` (tested, and gated by `--fail`), "
        "`extra_info` in `pytest-benchmark.json`. An empty cell in `runs.csv` means "
        "not measured.",
        "",
        "| column | meaning | unit | better | views |",
        "| --- | --- | --- | --- | --- |",
    ]
    order = (HEADLINE, COMPARED, EXTRA_INFO)
    for column in COLUMNS:
        views = ", ".join(view for view in order if view in column.views)
        lines.append(
            f"| `{column.name}` | {column.description} | {column.unit} | "
            f"{column.better or ''} | {views} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(columns_markdown(), end="")
