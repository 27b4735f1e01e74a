"""The drift measurement: does the speed probe cancel a slower machine and keep a slower code?

Usage::

    .venv/bin/python benchmarks/drift.py dnn [--repeats 5] [--train-limit N]
        [--test-limit M] [--burn N] [--spinners K] [--out DIR]

Three sides, each ARCH's runs through the ``mnistbench`` command, each run in its own
worker process (``--isolation process``, the local executor), ``--epochs 1``:

1. ``unloaded``: ARCH and ``burn-ARCH`` with no burn (benchmarks/drift_plugin.py), on the
   machine as it is;
2. ``loaded``: ARCH under a steady competing CPU-bound load on the same cores: one
   ``while True: pass`` process per CPU this process may use (``--spinners``), started
   before the sweep and killed after it, whatever happens;
3. ``burned``: ``burn-ARCH`` with the burn on (an N×N matmul per step, the same results),
   on the unloaded machine: a real slowdown in code.

The sides alternate: each of the ``--repeats`` rounds runs one of each (seed = the round),
and each side's runs are then merged into one directory (``unloaded/``, ``loaded/``,
``burned/``; the rounds are under ``rounds/``). Then ``mnistbench compare`` of 1 against 2
(the machine got slower: the raw fit time should rise about 2×, the normalized one stay
within 1 ± 0.15, and compare should say the machine was slower, not that the code
regressed) and of 1 against 3 (the code got slower: the normalized fit time should still
show it, as ``regressed``, and the gate fail). Both compares gate on ``--fail
fit_seconds_normalized:15%``. The report is Markdown on stdout and ``drift.json`` in
``--out``, beside the three sweeps and the two compares' output.

benchmarks/test_drift.py runs the DNN case and asserts those targets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mnistbench import record
from mnistbench.sweep import merge_directories

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "drift_plugin.py"
BURN_VARIABLE = "MNISTBENCH_DRIFT_BURN"  # drift_plugin.BURN_VARIABLE, without importing it
PREFIX = "burn-"  # drift_plugin.PREFIX


@dataclass(frozen=True)
class Settings:
    """How one architecture is measured: its training and test slices and its burn size N.

    The slices make each run take seconds to tens of seconds on a 2-core machine; the burn
    makes ``burn-ARCH``'s fit time about 30% longer than ARCH's on an unloaded machine.
    """

    train_limit: int
    test_limit: int
    burn: int


#: Per architecture, found by trying on a 2-core machine: the burn sizes add about 30% to
#: the process CPU time of a training epoch (the DNN's step is about 2.5 ms, the CNN's 8 ms,
#: the RNN's 30 ms; an N×N matmul costs 2·N³ FLOPs).
SETTINGS = {
    "dnn": Settings(train_limit=30_000, test_limit=1_000, burn=400),
    "cnn": Settings(train_limit=10_000, test_limit=1_000, burn=640),
    "rnn": Settings(train_limit=2_000, test_limit=500, burn=1000),
}

#: The normalized ``--fail`` rule both compares gate on.
GATE = "fit_seconds_normalized:15%"


def cpus_available() -> int:
    """The CPUs this process may run on (its affinity), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def install_plugin(site: Path) -> Path:
    """Lay drift_plugin.py out in ``site`` as pip would install it (the module and a
    ``*.dist-info`` with its entry point in the ``mnistbench`` group); returns ``site``.

    Put ``site`` on ``PYTHONPATH`` and the ``mnistbench`` command finds ``burn-dnn``,
    ``burn-cnn`` and ``burn-rnn``, in its worker processes too.
    """
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN, site / PLUGIN.name)
    dist_info = site / "mnistbench_drift-0.1.0.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mnistbench-drift\nVersion: 0.1.0\n"
    )
    (dist_info / "entry_points.txt").write_text("[mnistbench]\ndrift = drift_plugin\n")
    return site


def plugin_env(site: Path, burn: int = 0) -> dict[str, str]:
    """The environment for ``mnistbench`` subprocesses: ``site`` on ``PYTHONPATH``, the burn."""
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath, BURN_VARIABLE: str(burn)}


@contextlib.contextmanager
def cpu_load(spinners: int) -> Iterator[list[subprocess.Popen]]:
    """A steady CPU-bound load: ``spinners`` processes each spinning ``while True: pass``,
    started on entry and killed on exit, whatever happens in between."""
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(spinners):
            processes.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        time.sleep(0.5)  # let them reach their loop before anything is timed
        yield processes
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()


def _mnistbench(args: Sequence[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    """Run ``python -m mnistbench.cli ARGS``; its stdout and stderr also go to ``log``."""
    result = subprocess.run(
        [sys.executable, "-m", "mnistbench.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    log.write_text(f"$ mnistbench {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    return result


def run_sweep(
    output: Path,
    architectures: Sequence[str],
    *,
    seed: int,
    train_limit: int,
    test_limit: int,
    site: Path,
    burn: int = 0,
) -> Path:
    """One ``mnistbench run`` of ``architectures`` into ``output``, one run each with
    ``seed`` (1 epoch, process isolation, the local executor, no results database);
    returns ``output``.

    :raises RuntimeError: when the sweep exits non-zero (a run failed), with its output.
    """
    args = [
        "run",
        *architectures,
        "--epochs",
        "1",
        "--seed",
        str(seed),
        "--train-limit",
        str(train_limit),
        "--test-limit",
        str(test_limit),
        "--isolation",
        "process",
        "--executor",
        "local",
        "--no-db",
        "--output",
        str(output),
        "--force",
    ]
    output.mkdir(parents=True, exist_ok=True)
    result = _mnistbench(args, plugin_env(site, burn), output / "mnistbench.log")
    if result.returncode != 0:
        raise RuntimeError(
            f"mnistbench {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}"
        )
    return output


def merge_sweeps(sweeps: Sequence[Path], output: Path) -> Path:
    """One side of a comparison from its rounds' sweeps, as ``mnistbench merge`` makes it."""
    output.mkdir(parents=True, exist_ok=True)
    return merge_directories(list(sweeps), output)


@dataclass
class Comparison:
    """One ``mnistbench compare`` of one configuration's fit time, raw and normalized.

    ``probe_ratio`` is the candidate's median ``probe_seconds`` over the baseline's, both
    of this configuration's runs; ``machine_lines`` are compare's ``machine:`` lines
    without the prefix; ``gate_exit_code`` is compare's exit code with ``--fail GATE``
    (0: passed, 1: a regression).
    """

    config_id: str
    raw_ratio: float
    raw_verdict: str
    normalized_ratio: float
    normalized_verdict: str
    baseline_fit_seconds: float
    candidate_fit_seconds: float
    probe_ratio: float
    baseline_probe_seconds: float
    candidate_probe_seconds: float
    machine_changed_runs: int
    machine_lines: list[str] = field(default_factory=list)
    gate_exit_code: int = 0
    regression_lines: list[str] = field(default_factory=list)


def _median(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan
    values.sort()
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def compare(baseline: Path, candidate: Path, config_id: str, output: Path) -> Comparison:
    """``mnistbench compare BASELINE CANDIDATE --fail GATE -o OUTPUT``, read back for
    ``config_id``: its fit-time row of compare.csv, the probes of its runs, the machine lines.

    :raises RuntimeError: when compare exits with anything but 0 or 1, or has no fit-time
        row for ``config_id``.
    """
    import pandas as pd

    output.mkdir(parents=True, exist_ok=True)
    args = ["compare", str(baseline), str(candidate), "--fail", GATE, "--output", str(output)]
    result = _mnistbench(args, dict(os.environ), output / "compare.log")
    if result.returncode not in (0, 1):
        raise RuntimeError(
            f"mnistbench {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}"
        )
    table = pd.read_csv(output / "compare.csv", dtype={"config_id": str})
    for column in ("verdict", "normalized_verdict"):
        table[column] = table[column].fillna("")
    rows = table[(table["config_id"] == config_id) & (table["metric"] == "fit_seconds")]
    if len(rows) != 1:
        found = f"{len(rows)} fit_seconds rows for {config_id}"
        raise RuntimeError(f"{output / 'compare.csv'}: {found}")
    row = rows.iloc[0]

    def probes(directory: Path) -> tuple[float, int]:
        runs = [run for run in record.read(directory) if run.ok and run.config_id == config_id]
        changed = sum(run.machine_changed is True for run in runs)
        return _median([run.probe_seconds or math.nan for run in runs]), changed

    (base_probe, base_changed), (cand_probe, cand_changed) = probes(baseline), probes(candidate)
    lines = result.stderr.splitlines()
    machine = [line.removeprefix("machine: ") for line in lines if line.startswith("machine: ")]
    return Comparison(
        config_id=config_id,
        raw_ratio=float(row["ratio"]),
        raw_verdict=str(row["verdict"]),
        normalized_ratio=float(row["normalized_ratio"]),
        normalized_verdict=str(row["normalized_verdict"]),
        baseline_fit_seconds=float(row["baseline_median"]),
        candidate_fit_seconds=float(row["candidate_median"]),
        probe_ratio=cand_probe / base_probe if base_probe else math.nan,
        baseline_probe_seconds=base_probe,
        candidate_probe_seconds=cand_probe,
        machine_changed_runs=base_changed + cand_changed,
        machine_lines=machine,
        gate_exit_code=result.returncode,
        regression_lines=[line for line in lines if line.startswith("regression: ")],
    )


@dataclass
class Drift:
    """The figures of one architecture's drift measurement (what drift.json holds)."""

    architecture: str
    repeats: int
    train_limit: int
    test_limit: int
    burn: int
    spinners: int
    seconds: float
    loaded: Comparison  # unloaded ARCH → loaded ARCH
    burned: Comparison  # unloaded burn-ARCH (no burn) → unloaded burn-ARCH with the burn


def measure(
    architecture: str,
    out: Path,
    *,
    repeats: int = 5,
    train_limit: int | None = None,
    test_limit: int | None = None,
    burn: int | None = None,
    spinners: int | None = None,
) -> Drift:
    """The drift measurement of one reference architecture (``dnn``, ``cnn``, ``rnn``),
    written under ``out`` (the sweeps, the compares, ``drift.json``); returns its figures.

    Unset options come from :data:`SETTINGS`; ``spinners`` defaults to one per CPU.
    """
    settings = SETTINGS[architecture]
    train_limit = train_limit or settings.train_limit
    test_limit = test_limit or settings.test_limit
    burn = settings.burn if burn is None else burn
    spinners = cpus_available() if spinners is None else spinners
    burned_id = f"{PREFIX}{architecture}"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sides: dict[str, list[Path]] = {"unloaded": [], "loaded": [], "burned": []}
    with tempfile.TemporaryDirectory(prefix="mnistbench-drift-site-") as temporary:
        site = install_plugin(Path(temporary))
        slices = dict(train_limit=train_limit, test_limit=test_limit, site=site)
        # One run of each side per round, so a machine whose speed wanders over minutes
        # (other users) slows all three sides alike rather than one of them.
        for seed in range(repeats):
            rounds = out / "rounds" / str(seed)
            sides["unloaded"].append(
                run_sweep(rounds / "unloaded", [architecture, burned_id], seed=seed, **slices)
            )
            with cpu_load(spinners):
                sides["loaded"].append(
                    run_sweep(rounds / "loaded", [architecture], seed=seed, **slices)
                )
            sides["burned"].append(
                run_sweep(rounds / "burned", [burned_id], seed=seed, burn=burn, **slices)
            )
    unloaded, loaded, burned = (merge_sweeps(sweeps, out / side) for side, sweeps in sides.items())
    drift = Drift(
        architecture=architecture,
        repeats=repeats,
        train_limit=train_limit,
        test_limit=test_limit,
        burn=burn,
        spinners=spinners,
        seconds=time.perf_counter() - started,
        loaded=compare(unloaded, loaded, architecture, out / "compare-loaded"),
        burned=compare(unloaded, burned, burned_id, out / "compare-burned"),
    )
    (out / "drift.json").write_text(json.dumps(asdict(drift), indent=2) + "\n")
    return drift


def _ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"×{value:.2f}"


def report(drift: Drift) -> str:
    """The figures of :func:`measure` as Markdown: one table row per comparison, then
    compare's ``machine:`` lines and the gate's outcome for each."""
    lines = [
        f"## Drift: {drift.architecture}",
        "",
        f"{drift.repeats} repeats a side, 1 epoch on {drift.train_limit:,} images "
        f"(test {drift.test_limit:,}); load: {drift.spinners} spinning processes on "
        f"{cpus_available()} CPUs; burn N = {drift.burn}; {drift.seconds:.0f} s in all.",
        "",
        "| comparison | fit s (base → cand) | raw fit ratio | raw verdict | probe ratio "
        "| normalized fit ratio | normalized verdict | `--fail " + GATE + "` |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cases = (
        ("slower machine (load)", drift.loaded),
        (f"slower code (burn {drift.burn}, unloaded)", drift.burned),
    )
    for name, c in cases:
        gate = "passes" if c.gate_exit_code == 0 else "fails"
        lines.append(
            f"| {name}: `{c.config_id}` | {c.baseline_fit_seconds:.2f} → "
            f"{c.candidate_fit_seconds:.2f} | {_ratio(c.raw_ratio)} | {c.raw_verdict} | "
            f"{_ratio(c.probe_ratio)} | {_ratio(c.normalized_ratio)} | "
            f"{c.normalized_verdict} | {gate} |"
        )
    for name, c in cases:
        lines += ["", f"{name}, compare says:", ""]
        lines += [f"    machine: {line}" for line in c.machine_lines]
        lines += [f"    {line}" for line in c.regression_lines]
        if c.machine_changed_runs:
            lines.append(f"    ({c.machine_changed_runs} runs flagged machine_changed)")
    lines += [
        "",
        f"The burn's raw slowdown on the unloaded machine: {_ratio(drift.burned.raw_ratio)} "
        f"of `{drift.burned.config_id}`'s fit time.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: measure one architecture, print the Markdown report."""
    parser = argparse.ArgumentParser(
        description="Measure how the speed probe normalizes a slower machine and a slower code."
    )
    parser.add_argument("architecture", choices=sorted(SETTINGS))
    parser.add_argument("--repeats", type=int, default=5, help="runs a side (default 5)")
    parser.add_argument("--train-limit", type=int, help="training images (default per ARCH)")
    parser.add_argument("--test-limit", type=int, help="test images (default per ARCH)")
    parser.add_argument("--burn", type=int, help="burn size N (default per ARCH)")
    parser.add_argument(
        "--spinners", type=int, help=f"load processes (default one per CPU: {cpus_available()})"
    )
    parser.add_argument(
        "--out", type=Path, help="output directory (default results/drift-ARCH-<timestamp>)"
    )
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or Path("results") / f"drift-{args.architecture}-{stamp}"
    drift = measure(
        args.architecture,
        out,
        repeats=args.repeats,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        burn=args.burn,
        spinners=args.spinners,
    )
    print(report(drift))
    print(f"figures: {out / 'drift.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
