"""Every column of ``runs.csv`` once: its name, meaning, type, role, unit and better direction.

This is the one place a column is declared, and every question about columns is answered
from it:

- the typed run record (:class:`mnistbench.record.Run`) has one field per column, of the
  column's :attr:`Column.kind`, and ``runs.csv`` its columns in this order;
- each column's :attr:`Column.role` says what it is: an option of the **work** a run did
  (what it trained and how much), an execution **setting** (where and how it ran), a
  **measurement**, a fact about the **machine**, or **bookkeeping**. Which runs form one
  configuration's series (:func:`series_key`), whether two runs did the same work
  (:func:`work_options`), the parameters of a pytest-benchmark benchmark and the options
  a configuration's label names all derive from the roles;
- the headline figures of ``comparison.csv``, the metrics ``mnistbench compare`` tests and
  gates, the terminal tables, the ``extra_info`` of ``pytest-benchmark.json`` (the
  :attr:`Column.views`), and the column reference in ``docs/columns.md``.

Adding a metric is one entry here (plus the code that measures it).
``python -m mnistbench.columns`` prints ``docs/columns.md``; a test checks that the file is
up to date.

Why this module is long: it is the registry itself, one entry of a few lines per column
(name, kind, role, description, unit, direction, views), and splitting it would put the
columns of one file in several places.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnistbench import format as fmt

#: Views a column can appear in (``Column.views``).
HEADLINE = "headline"  # comparison.csv: median, spread and ratio to best per configuration
COMPARED = "compared"  # mnistbench compare: tested and gated with --fail
EXTRA_INFO = "extra_info"  # pytest-benchmark.json: median in each benchmark's extra_info

LOWER = "lower"
HIGHER = "higher"

# The kinds of value a column holds (Column.kind): the record's field types.
TEXT = "text"  # str; "" when empty
INT = "int"  # int; None when not measured
FLOAT = "float"  # float; None when not measured
BOOL = "bool"  # True, False; None when not known
LIST = "list"  # a JSON list in runs.csv, a tuple in the record; () when empty

# The roles of a column (Column.role).
WORK = "work"  # what a run trained and how much: runs that differ here did different work
SETTING = "setting"  # where and how it executed: same work, measured under other conditions
MEASUREMENT = "measurement"  # what the run measured
MACHINE = "machine"  # what the machine was and how fast it was for the run
BOOKKEEPING = "bookkeeping"  # ids, provenance, status

KINDS = (TEXT, INT, FLOAT, BOOL, LIST)
ROLES = (WORK, SETTING, MEASUREMENT, MACHINE, BOOKKEEPING)


@dataclass(frozen=True)
class Column:
    """One column of ``runs.csv``.

    :param name: the column's name, with its unit in it where it has one.
    :param kind: :data:`TEXT`, :data:`INT`, :data:`FLOAT`, :data:`BOOL` or :data:`LIST`.
    :param role: :data:`WORK`, :data:`SETTING`, :data:`MEASUREMENT`, :data:`MACHINE` or
        :data:`BOOKKEEPING`.
    :param description: one line for the column reference.
    :param unit: the unit values are in (``s``, ``ms``, ``samples/s``, ``MB``,
        ``FLOP/s``, ``FLOPs``), "" when unitless.
    :param better: ``"lower"`` or ``"higher"`` for a metric; None for a column
        that describes a run rather than measures it.
    :param views: where the metric appears besides ``runs.csv`` (:data:`HEADLINE`,
        :data:`COMPARED`, :data:`EXTRA_INFO`).
    :param summary: its header in the terminal's summary table, "" when not shown.
    :param spec: the format spec of its values in the terminal's tables (``".1f"``).
    """

    name: str
    kind: str
    role: str
    description: str
    unit: str = ""
    better: str | None = None
    views: frozenset[str] = frozenset()
    summary: str = ""
    spec: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.role not in ROLES:
            raise ValueError(f"column {self.name}: kind {self.kind!r}, role {self.role!r}")

    @property
    def is_metric(self) -> bool:
        return self.better is not None

    def format(self, value, *, signed: bool = False) -> str:
        """A value with its unit for messages: ``12.3 s``, ``41,200 samples/s``, ``0.9812``."""
        return fmt.number(value, self.unit, signed=signed)


def _metric(name, kind, role, description, unit, better, *views, summary="", spec=""):
    return Column(name, kind, role, description, unit, better, frozenset(views), summary, spec)


_HC = (HEADLINE, COMPARED)

#: Every column of ``runs.csv``, in file order.
COLUMNS: tuple[Column, ...] = (
    Column(
        "run_id",
        TEXT,
        BOOKKEEPING,
        "`<config_id>-r<repeat>`, with the backend when one was named: "
        "unique within one output directory",
        summary="run",
    ),
    Column(
        "config_id",
        TEXT,
        BOOKKEEPING,
        "the architecture plus its non-default execution options "
        "(`dnn`, `dnn-spe32-jiton`); repeats share it",
    ),
    Column("architecture", TEXT, WORK, "the registered architecture that ran"),
    Column(
        "plugin",
        TEXT,
        BOOKKEEPING,
        "the plugin (entry-point name) that registered the architecture",
    ),
    Column(
        "plugin_version", TEXT, BOOKKEEPING, "the version of the distribution that ships the plugin"
    ),
    Column("backend", TEXT, WORK, "the Keras backend (`tensorflow`, `jax`, `torch`)"),
    Column("backend_version", TEXT, MACHINE, "the version of the backend's package"),
    Column(
        "isolation",
        TEXT,
        SETTING,
        "`process` (a fresh worker per run), `warm` (one worker kept for the runs that "
        "follow, a new one after a crash) or `none` (in the `mnistbench` process)",
    ),
    Column("executor", TEXT, SETTING, "`local` or `ray`"),
    Column("node", TEXT, MACHINE, "host name of the machine that ran it"),
    Column(
        "cpus_reserved",
        INT,
        SETTING,
        "CPUs reserved for the run (local: all of the machine's, or `--threads`; Ray: "
        "`--cpus-per-run`); its thread pools (intra-op, inter-op, BLAS) are limited to them",
    ),
    Column(
        "pinned_cpus",
        TEXT,
        SETTING,
        "the CPUs the run's worker was bound to (`--pin`, `ab --duet`), e.g. `0` or `0,1`; "
        "empty when it was not bound",
    ),
    Column(
        "device",
        TEXT,
        MACHINE,
        "the device the model's weights lived on while it trained: `cpu`, or "
        "`<kind>:<index> <name>` (`gpu:0 NVIDIA H200`)",
    ),
    Column(
        "devices",
        LIST,
        MACHINE,
        'JSON list of the devices the run\'s backend saw, accelerators first, each `{"kind": '
        '"gpu", "name": "NVIDIA H200", "memory_mb": 143771.0}`; `memory_mb` is null where the '
        "backend does not tell it; the `cpu` entry is named by the CPU model and holds the "
        "machine's physical memory",
    ),
    Column("epochs", INT, WORK, "epochs trained (fewer than `--epochs` when a target stopped it)"),
    Column("batch_size", INT, WORK, "batch size for training, evaluation and inference timing"),
    Column("steps_per_execution", INT, WORK, "batches per compiled call (Keras `compile` option)"),
    Column("jit_compile", BOOL, WORK, "XLA compilation as Keras resolved it: True or False"),
    Column("train_samples", INT, WORK, "training images used"),
    Column("test_samples", INT, WORK, "test images used"),
    Column("seed", INT, BOOKKEEPING, "the run's seed: `--seed` + `repeat`"),
    Column("repeat", INT, BOOKKEEPING, "0-based repeat index"),
    Column(
        "round",
        INT,
        BOOKKEEPING,
        "the run's round: with `--order interleaved` (the default) round r runs repeat r "
        "of every configuration, in a seeded random order",
    ),
    Column(
        "position",
        INT,
        BOOKKEEPING,
        "the run's place in its sweep's order, from 0: reproducible from `--seed`",
    ),
    Column("target_accuracy", FLOAT, WORK, "`--target-accuracy`; empty when unused"),
    Column(
        "eval_every",
        INT,
        WORK,
        "`--eval-every` steps between target evaluations; empty = every epoch",
    ),
    _metric(
        "fit_seconds",
        FLOAT,
        MEASUREMENT,
        "wall time of `model.fit`, all epochs (target evaluations included)",
        "s",
        LOWER,
        *_HC,
        summary="fit s",
        spec=".1f",
    ),
    _metric(
        "steady_step_ms",
        FLOAT,
        MEASUREMENT,
        "the median time of one training step over blocks of 20 steps, the first block of "
        "the run left out (it traces and compiles): steadier than `fit_seconds`, which a "
        "burst of other load or a slow first block moves",
        "ms",
        LOWER,
        *_HC,
        summary="step ms",
        spec=".2f",
    ),
    _metric(
        "first_epoch_seconds",
        FLOAT,
        MEASUREMENT,
        "epoch 1, which includes tracing and compilation",
        "s",
        LOWER,
        *_HC,
        summary="ep1 s",
        spec=".2f",
    ),
    _metric(
        "steady_epoch_seconds",
        FLOAT,
        MEASUREMENT,
        "mean of epochs 2..n (empty with one epoch)",
        "s",
        LOWER,
        *_HC,
        spec=".2f",
    ),
    _metric("seconds_per_epoch", FLOAT, MEASUREMENT, "mean of all epochs", "s", LOWER, HEADLINE),
    Column("epoch_seconds", LIST, MEASUREMENT, "JSON list: seconds of each epoch", "s"),
    Column(
        "epoch_accuracy", LIST, MEASUREMENT, "JSON list: training accuracy at the end of each epoch"
    ),
    Column("epoch_loss", LIST, MEASUREMENT, "JSON list: training loss at the end of each epoch"),
    _metric(
        "time_to_accuracy_seconds",
        FLOAT,
        MEASUREMENT,
        "from the start of `fit` to the evaluation that "
        "reached `--target-accuracy`, evaluation time included; empty when not reached",
        "s",
        LOWER,
        *_HC,
    ),
    Column(
        "converged",
        BOOL,
        MEASUREMENT,
        "True/False when a target was set (whether it was reached); empty otherwise",
    ),
    _metric(
        "train_samples_per_second",
        FLOAT,
        MEASUREMENT,
        "`train_samples × epochs / fit_seconds`",
        "samples/s",
        HIGHER,
        *_HC,
    ),
    _metric(
        "test_accuracy",
        FLOAT,
        MEASUREMENT,
        "accuracy on the test images after training",
        "",
        HIGHER,
        *_HC,
        EXTRA_INFO,
        summary="acc",
        spec=".4f",
    ),
    _metric(
        "test_loss",
        FLOAT,
        MEASUREMENT,
        "loss on the test images after training",
        "",
        LOWER,
        *_HC,
        EXTRA_INFO,
    ),
    _metric(
        "inference_samples_per_second",
        FLOAT,
        MEASUREMENT,
        "`model.predict` over all test images at `batch_size`, after a warm-up call",
        "samples/s",
        HIGHER,
        *_HC,
        summary="infer/s",
        spec=",.0f",
    ),
    _metric(
        "latency_ms",
        FLOAT,
        MEASUREMENT,
        "single-image prediction (`predict_on_batch`, the tutorial's "
        "`sample_prediction`): median of 100 calls after 5 warm-up calls",
        "ms",
        LOWER,
        *_HC,
        summary="p50 ms",
        spec=".2f",
    ),
    _metric(
        "latency_p95_ms",
        FLOAT,
        MEASUREMENT,
        "95th percentile of the same 100 calls",
        "ms",
        LOWER,
        *_HC,
    ),
    _metric(
        "latency_p99_ms",
        FLOAT,
        MEASUREMENT,
        "99th percentile of the same 100 calls",
        "ms",
        LOWER,
        HEADLINE,
    ),
    Column(
        "inference_curve",
        LIST,
        MEASUREMENT,
        "JSON list, one point per `--inference-batch-sizes` value, ascending: "
        '`{"batch_size": 32, "samples": 1984, "seconds": 0.05, "samples_per_second": 39680.0, '
        '"latency_ms": 0.8}`; measured after training with `predict_on_batch` on test images '
        "(repeated when the test set is smaller), after one warm-up call, for at most 2,000 "
        "images (at least 5 calls) or until 3 s have passed; `seconds`: the timed calls' sum; "
        "`latency_ms`: median seconds per call × 1000. Empty without the option",
    ),
    Column(
        "sample_predictions",
        LIST,
        MEASUREMENT,
        "JSON list: predicted labels of the digits in `samples.npz`",
    ),
    _metric(
        "params",
        INT,
        MEASUREMENT,
        "the model's parameter count (trainable and not)",
        "",
        LOWER,
        HEADLINE,
    ),
    Column(
        "inference_flops_per_sample",
        FLOAT,
        MEASUREMENT,
        "analytic, from the model's layers (a multiply-add counts 2)",
        "FLOPs",
    ),
    Column(
        "train_flops_per_sample",
        FLOAT,
        MEASUREMENT,
        "analytic: 3 × inference (forward plus backward)",
        "FLOPs",
    ),
    _metric(
        "train_flops_per_second",
        FLOAT,
        MEASUREMENT,
        "achieved: train FLOPs per sample × samples per second of the steady-state epochs",
        "FLOP/s",
        HIGHER,
        HEADLINE,
    ),
    Column(
        "inference_flops_per_second",
        FLOAT,
        MEASUREMENT,
        "achieved: inference FLOPs per sample × `inference_samples_per_second`",
        "FLOP/s",
    ),
    Column(
        "peak_flops_per_second",
        FLOAT,
        MACHINE,
        "the peak available to this run: best of 5 float32 "
        "2048×2048 matmuls on its backend, measured in a worker under the run's thread "
        "limit, once per node, backend and CPU reservation",
        "FLOP/s",
    ),
    _metric(
        "train_peak_fraction",
        FLOAT,
        MEASUREMENT,
        "`train_flops_per_second / peak_flops_per_second`",
        "",
        HIGHER,
        HEADLINE,
    ),
    _metric(
        "inference_peak_fraction",
        FLOAT,
        MEASUREMENT,
        "`inference_flops_per_second / peak_flops_per_second`",
        "",
        HIGHER,
        HEADLINE,
    ),
    _metric(
        "peak_memory_mb",
        FLOAT,
        MEASUREMENT,
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
        FLOAT,
        MEASUREMENT,
        "peak memory the backend allocated on the accelerator the run trained on "
        "(TensorFlow `get_memory_info(...)['peak']`, JAX `memory_stats()['peak_bytes_in_use']`, "
        "`torch.cuda.max_memory_allocated`); empty on a CPU",
        "MB",
        LOWER,
    ),
    Column(
        "probe_version",
        INT,
        MACHINE,
        "version of the speed probe's workload; probe times compare only within one version",
    ),
    Column(
        "probe_seconds_before",
        FLOAT,
        MACHINE,
        "the speed probe just before the run: median of its timed repeats of a fixed small "
        "training workload, in the run's worker, under its thread limit, on its backend",
        "s",
    ),
    Column("probe_seconds_after", FLOAT, MACHINE, "the same probe just after the run", "s"),
    _metric(
        "probe_seconds",
        FLOAT,
        MACHINE,
        "mean of `probe_seconds_before` and `probe_seconds_after`: how fast the machine was "
        "for this run (lower: faster)",
        "s",
        LOWER,
        HEADLINE,
        EXTRA_INFO,
    ),
    Column(
        "machine_changed",
        BOOL,
        MACHINE,
        "True when the two probes differ by more than 10%: the machine's speed changed "
        "during the run, and its normalized figures are doubtful",
    ),
    _metric(
        "fit_seconds_normalized",
        FLOAT,
        MEASUREMENT,
        "`fit_seconds / probe_seconds`: fit time in units of the probe's time; two runs "
        "compare by the ratio of their normalized values",
        "",
        LOWER,
    ),
    _metric(
        "steady_epoch_seconds_normalized",
        FLOAT,
        MEASUREMENT,
        "`steady_epoch_seconds / probe_seconds`",
        "",
        LOWER,
    ),
    _metric(
        "inference_samples_per_second_normalized",
        FLOAT,
        MEASUREMENT,
        "`inference_samples_per_second × probe_seconds`: the inverse of the test set's "
        "inference time in units of the probe",
        "",
        HIGHER,
    ),
    _metric(
        "latency_ms_normalized",
        FLOAT,
        MEASUREMENT,
        "`latency_ms / probe_seconds`",
        "",
        LOWER,
    ),
    Column(
        "fit_cpu_seconds",
        FLOAT,
        MEASUREMENT,
        "CPU time (user + system) of the run's process during `fit`, all threads; "
        "against `fit_seconds`, the cores it kept busy",
        "s",
    ),
    Column(
        "inference_cpu_seconds",
        FLOAT,
        MEASUREMENT,
        "CPU time (user + system) of the run's process while inference was timed (warm-up, "
        "the test-set predict and the latency calls)",
        "s",
    ),
    Column(
        "fit_involuntary_switches",
        INT,
        MEASUREMENT,
        "involuntary context switches of the run's process during `fit`: the scheduler "
        "took its CPU away (contention)",
    ),
    Column(
        "fit_cpu_pressure_seconds",
        FLOAT,
        MEASUREMENT,
        "time some task waited for a CPU during `fit`, from Linux PSI "
        "(`/proc/pressure/cpu`), machine-wide; empty where the system has no PSI",
        "s",
    ),
    Column(
        "fit_steal_seconds",
        FLOAT,
        MEASUREMENT,
        "CPU time the hypervisor gave to other guests during `fit`, summed over CPUs "
        "(`/proc/stat` steal); empty where the system does not report it",
        "s",
    ),
    Column(
        "fit_run_queue_seconds",
        FLOAT,
        MEASUREMENT,
        "time the run's threads waited, runnable, for a CPU during `fit`, summed over the "
        "process's threads (Linux schedstat); empty where the system does not report it",
        "s",
    ),
    Column(
        "fit_contended",
        BOOL,
        MEASUREMENT,
        "True when the run's threads spent more than 25% of their time during `fit` "
        "waiting for a CPU (`fit_run_queue_seconds` against `fit_run_queue_seconds` + "
        "`fit_cpu_seconds`; measured here: 7-11% alone on 2 CPUs, 33-53% beside two busy "
        "processes): its times measure the machine's load as much as the code",
    ),
    _metric(
        "startup_seconds",
        FLOAT,
        MEASUREMENT,
        "the run's worker from its start to the run's first phase: interpreter, backend "
        "import, plugins and data (about 0 for a warm worker's later runs and in-process)",
        "s",
        LOWER,
    ),
    _metric(
        "run_seconds",
        FLOAT,
        MEASUREMENT,
        "the run in its worker from its first phase to its record: the speed probes, "
        "preparation, fit, evaluation, inference timing (start-up not included)",
        "s",
        LOWER,
    ),
    Column(
        "status",
        TEXT,
        BOOKKEEPING,
        "`ok`; `failed` (error, crashed or killed worker, timeout), `diverged` "
        "(NaN/inf loss) or `interrupted`",
        summary="status",
    ),
    Column("error", TEXT, BOOKKEEPING, "one line; empty when `status` is `ok`"),
    Column("started_at", TEXT, BOOKKEEPING, "UTC start time, ISO 8601"),
)


BY_NAME: dict[str, Column] = {column.name: column for column in COLUMNS}

#: The columns of ``runs.csv``, in order.
RUN_COLUMNS: list[str] = [column.name for column in COLUMNS]


def in_view(view: str) -> list[Column]:
    """The metrics shown in ``view`` (:data:`HEADLINE`, :data:`COMPARED`, ...), in file order."""
    return [column for column in COLUMNS if view in column.views]


def with_role(*roles: str) -> list[Column]:
    """The columns of the given roles, in file order."""
    return [column for column in COLUMNS if column.role in roles]


def metric(name: str) -> Column:
    """The column called ``name``; KeyError if there is none."""
    return BY_NAME[name]


def metrics() -> list[Column]:
    """Every metric (a column with a better direction), in file order."""
    return [column for column in COLUMNS if column.is_metric]


def normalized(name: str) -> str | None:
    """The name of ``name``'s normalized form (``fit_seconds_normalized``: divided by the
    run's speed probe, see :mod:`mnistbench.probe`), None when it has none."""
    return f"{name}_normalized" if f"{name}_normalized" in BY_NAME else None


#: The columns that name a run's configuration in a sweep: the architecture and backend
#: (its key in ``compare``, with the ``config_id`` that names the other options).
CONFIG_KEY = ("architecture", "backend")


def work_options() -> list[str]:
    """The work options that must agree before two runs of one configuration compare:
    every :data:`WORK` column but the configuration's key."""
    return [column.name for column in with_role(WORK) if column.name not in CONFIG_KEY]


def series_key() -> list[str]:
    """What makes a history series: every :data:`WORK` and :data:`SETTING` column. Runs
    that agree on all of them did the same work under the same conditions."""
    return [column.name for column in with_role(WORK, SETTING)]


#: The leading column of ``runs.csv`` that says its format (:mod:`mnistbench.record`).
FORMAT_COLUMN = "format_version"


def columns_markdown() -> str:
    """The column reference, ``docs/columns.md``: one table row per column of ``runs.csv``."""
    lines = [
        "# The columns of `runs.csv`",
        "",
        "Generated from `mnistbench/columns.py` by `python -m mnistbench.columns`; "
        "do not edit by hand.",
        "",
        "`kind` is the type of the run record's field (`text`, `int`, `float`, `bool`, a "
        "JSON `list`); `role` what the column is: an option of the `work` a run did, an "
        "execution `setting`, a `measurement`, a fact about the `machine`, or "
        "`bookkeeping`. `better` says which direction is an improvement for a metric; "
        "`views` where it appears besides `runs.csv`: `headline` in `comparison.csv` "
        "(median, spread and ratio to best), `compared` in `mnistbench compare` (tested, "
        "and gated by `--fail`), `extra_info` in `pytest-benchmark.json`. An empty cell "
        "in `runs.csv` means not measured.",
        "",
        "| column | meaning | kind | role | unit | better | views |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| `{FORMAT_COLUMN}` | the format of `runs.csv` itself: the same in every row; a "
        "file without the column is format 1 | int | bookkeeping | | | |",
    ]
    order = (HEADLINE, COMPARED, EXTRA_INFO)
    for column in COLUMNS:
        views = ", ".join(view for view in order if view in column.views)
        lines.append(
            f"| `{column.name}` | {column.description} | {column.kind} | {column.role} | "
            f"{column.unit} | {column.better or ''} | {views} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(columns_markdown(), end="")
