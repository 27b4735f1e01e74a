"""A result directory's layout: the name and meaning of every file mnistbench writes, once.

A sweep writes its files into one output directory (``results/<timestamp>/`` by
default); ``mnistbench compare`` writes its own two beside the candidate's, ``mnistbench
ab`` a directory holding two sweeps, and ``mnistbench history`` its figure and pages.
Every module names these files through this one, and ``report.html`` describes each
file it links from :data:`FILES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class File:
    """One file of a result directory: its name (a path relative to the directory) and
    what it holds, as ``report.html``'s file list says."""

    name: str
    description: str

    def __str__(self) -> str:
        return self.name

    def of(self, directory: Path | str) -> Path:
        """This file's path in ``directory``."""
        return Path(directory) / self.name


# --- a sweep's directory -------------------------------------------------------------------
RUNS_CSV = File("runs.csv", "one row per run: every measurement, status and error")
MANIFEST_JSON = File(
    "manifest.json", "the sweep's plan and the state of each run (read by --resume)"
)
ENVIRONMENT_JSON = File(
    "environment.json",
    "versions, machine, CPU, data source, plugins, command line and git commit",
)
SAMPLES_NPZ = File("samples.npz", "the test digits shown in predictions.png")
SWEEP_TOML = File("sweep.toml", "the sweep file the sweep was planned from")
COMPARISON_CSV = File(
    "comparison.csv", "one row per configuration: headline medians, spreads, ratios to best"
)
COMPARISON_PNG = File(
    "comparison.png", "training time, inference throughput and test accuracy per configuration"
)
CURVES_PNG = File("curves.png", "training accuracy and loss per epoch, per configuration")
PREDICTIONS_PNG = File(
    "predictions.png", "the first test digits with each configuration's predicted label"
)
INFERENCE_PNG = File("inference.png", "inference throughput against batch size, per configuration")
PYTEST_BENCHMARK_JSON = File(
    "pytest-benchmark.json", "the timings in pytest-benchmark's JSON format"
)
REPORT_HTML = File("report.html", "the whole sweep on one page")
#: Each run's worker output, ``logs/<run_id>.log``.
LOG_DIR = "logs"
#: A warm worker's own output in ``logs/``: its start (the backend's import, its
#: warnings) and what it prints between runs; each run's output is in the run's log.
WORKER_START_LOG = "worker-start.log"

# --- what compare and ab write -------------------------------------------------------------
COMPARE_CSV = File(
    "compare.csv", "one row per configuration and metric: both sides, ratio, verdict"
)
COMPARE_PNG = File("compare.png", "each compared metric's ratio, candidate over baseline")

# --- what export writes --------------------------------------------------------------------
BMF_JSON = File("bmf.json", "the configurations' metrics in Bencher Metric Format")
GAB_SMALLER_JSON = File(
    "github-action-benchmark-smaller.json",
    "the metrics better lower, as github-action-benchmark's customSmallerIsBetter input",
)
GAB_BIGGER_JSON = File(
    "github-action-benchmark-bigger.json",
    "the metrics better higher, as github-action-benchmark's customBiggerIsBetter input",
)

# --- what history writes -------------------------------------------------------------------
HISTORY_PNG = File("history.png", "each configuration's metric sweep after sweep")
INDEX_HTML = File("index.html", "the history pages' overview")

#: Every file a sweep's directory may hold, by name.
FILES: dict[str, File] = {
    file.name: file
    for file in (
        RUNS_CSV,
        COMPARISON_CSV,
        COMPARISON_PNG,
        CURVES_PNG,
        PREDICTIONS_PNG,
        INFERENCE_PNG,
        ENVIRONMENT_JSON,
        SAMPLES_NPZ,
        PYTEST_BENCHMARK_JSON,
        MANIFEST_JSON,
        SWEEP_TOML,
        REPORT_HTML,
        COMPARE_CSV,
        COMPARE_PNG,
        BMF_JSON,
        GAB_SMALLER_JSON,
        GAB_BIGGER_JSON,
    )
}
#: What a file no mnistbench module writes holds, as far as mnistbench knows.
THIRD_PARTY = "written by another reporter"


def log_path(output_dir: Path | str, run_id: str) -> Path:
    """The worker log of run ``run_id`` in ``output_dir``."""
    return Path(output_dir) / LOG_DIR / f"{run_id}.log"


def describe(relative: str) -> str:
    """What the file at ``relative`` (a path in a sweep's directory) holds."""
    parts = relative.split("/")
    if parts == [LOG_DIR, WORKER_START_LOG]:
        return "the warm workers' own output: their start (the backend's import) and between runs"
    if len(parts) == 2 and parts[0] == LOG_DIR and parts[1].endswith(".log"):
        return f"the output of run {parts[1].removesuffix('.log')}'s worker process"
    known = FILES.get(relative)
    return known.description if known else THIRD_PARTY
