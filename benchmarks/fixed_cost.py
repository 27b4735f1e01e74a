"""The fixed cost of a run: where a sweep's time goes besides ``fit``, with a fresh worker per
run (``--isolation process``, the default) and with one warm worker kept across the runs of a
backend (``--isolation warm``).

Usage::

    .venv/bin/python benchmarks/fixed_cost.py --rounds 2 [--before OTHER/.venv/bin/python]

``--before`` also times the same sweep with an earlier mnistbench's interpreter (its
default isolation), of which only the total is known: its ``runs.csv`` may not split the
run's time.

Each round runs the same sweep once each way, alternating, as a user runs it (``mnistbench
run dnn --epochs 1 --train-limit 1000 --repeats 4 --no-db``, a new process), and times it
whole. Per run, ``runs.csv`` splits the rest: ``startup_seconds`` (the worker's interpreter,
backend import, plugins and data), ``run_seconds`` less ``fit_seconds`` (the speed probes,
preparation, evaluation, inference timing); what is left of the sweep's wall time is the
driver's (its start, planning, writing the records and the reports). The fixed cost of a
run is the sweep's wall time less its fits, over its runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistbench import record

SWEEP = ("dnn", "--epochs", "1", "--train-limit", "1000", "--repeats", "4", "--no-db")
MODES = ("process", "warm")


def one_sweep(isolation: str, output: Path, python: str = sys.executable) -> dict[str, float]:
    command = [python, "-m", "mnistbench.cli", "run", *SWEEP]
    if isolation != "before":
        command += ["--isolation", isolation]
    started = time.monotonic()
    subprocess.run([*command, "--output", str(output), "--force"], check=True, capture_output=True)
    wall = time.monotonic() - started
    runs = [run for run in record.read(output) if run.ok]
    fits = sum(run.fit_seconds for run in runs)
    nan = float("nan")
    startup = sum(run.startup_seconds if run.startup_seconds is not None else nan for run in runs)
    in_worker = sum(
        run.run_seconds - run.fit_seconds if run.run_seconds is not None else nan for run in runs
    )
    count = len(runs)
    return {
        "runs": count,
        "wall": wall,
        "fit": fits / count,
        "startup": startup / count,
        "in_worker": in_worker / count,
        "driver": (wall - fits - startup - in_worker) / count,
        "fixed": (wall - fits) / count,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", help="the interpreter of an earlier mnistbench to time too")
    args = parser.parse_args(argv)
    modes = (*MODES, "before") if args.before else MODES
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="mnistbench-fixed-cost-") as root:
        for round_ in range(args.rounds):
            for mode in modes if round_ % 2 == 0 else modes[::-1]:
                python = args.before if mode == "before" else sys.executable
                results[mode].append(one_sweep(mode, Path(root) / f"{mode}-{round_}", python))
                print(f"round {round_} {mode}: {results[mode][-1]}", file=sys.stderr)
    print("| per run, seconds (median of rounds) | " + " | ".join(modes) + " |")
    print("| --- | " + " | ".join("---:" for _ in modes) + " |")
    for key, label in (
        ("startup", "worker start-up (interpreter, backend import, plugins, data)"),
        ("in_worker", "in the worker besides fit (probes, preparation, evaluation, inference)"),
        ("driver", "the driver (its start, planning, records, reports)"),
        ("fixed", "**fixed cost: all but fit**"),
        ("fit", "fit"),
    ):
        cells = [f"{statistics.median(r[key] for r in results[mode]):.2f}" for mode in modes]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
