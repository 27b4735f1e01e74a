"""Making the pairs: each side's warm workers, the rounds in their seeded order (or at once,
pinned, in a duet), both sides' sweeps recorded as runs end, ``pairs.csv``."""

from __future__ import annotations

import csv
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from mnistbench import layout, record
from mnistbench.ab.design import SIDES, Design, Pair, schedule
from mnistbench.ab.verdicts import AB_CSV, Verdict, evaluate, precise_enough, write_verdicts
from mnistbench.atomic import atomic_writer
from mnistbench.backends import configured_backend, thread_limit_env
from mnistbench.checkouts import Side
from mnistbench.environment import (
    write_environment,
)
from mnistbench.errors import ConfigError, MnistbenchError
from mnistbench.gates import FailRule, compared_metrics
from mnistbench.manifest import Manifest
from mnistbench.plan import RunConfig
from mnistbench.record import Run, RunsWriter, utc_now
from mnistbench.serve import Spawn, WarmWorker, WorkerGone, record_of
from mnistbench.stores import Store
from mnistbench.stores.recorder import SweepRecorder
from mnistbench.sweep import describe_sweep, write_samples
from mnistbench.worker import Placement, run_record

PAIRS_CSV = layout.File("pairs.csv", "one row per pair: configuration, order, both runs, ratios")


# --- the sides' workers ----------------------------------------------------------------------


class SideRunner:
    """Runs one side's runs in warm workers of its environment, one per backend."""

    def __init__(self, side: Side, data: Path, log_dir: Path, threads: int | None) -> None:
        self.side = side
        self.data = data
        self.log_dir = log_dir
        self.threads = threads
        self.workers: dict[str, WarmWorker] = {}

    def worker(self, backend: str) -> WarmWorker:
        """This side's warm worker of ``backend``, made on first use (started on first run),
        its thread pools limited to :attr:`threads`."""
        if backend not in self.workers:
            extra = thread_limit_env(self.threads) if self.threads else {}
            self.log_dir.mkdir(parents=True, exist_ok=True)
            spawn = Spawn(
                self.side.python,
                self.side.environ({**os.environ, **extra}),
                backend=backend,
                cwd=self.log_dir,
            )
            self.workers[backend] = WarmWorker(spawn, self.data, self.log_dir)
        return self.workers[backend]

    def launch(self, backend: str) -> None:
        """Start this side's worker of ``backend`` without waiting for it (:meth:`start`
        waits): both sides' workers import their backend at once."""
        worker = self.worker(backend)
        if not worker.alive:
            worker.launch()

    def start(self, backend: str, *, ready: bool = True) -> list[str]:
        """Start this side's worker of ``backend`` (or wait for the one launched) until it
        is ready for runs, or with ``ready=False`` only until its hello; the architectures
        its plugins register (the hello's). One line naming its log when it does not start."""
        worker = self.worker(backend)
        if not worker.ready or not worker.alive:
            try:
                if not worker.alive:
                    worker.launch()
                if ready:
                    worker.wait_ready()
                else:
                    worker.wait_hello()
            except WorkerGone as error:
                raise MnistbenchError(
                    f"the {self.side.describe()} worker did not start ({error}); see "
                    f"{self.log_dir / layout.WORKER_START_LOG}"
                ) from None
        return list(worker.hello.get("architectures", []))

    def run(
        self,
        config: RunConfig,
        *,
        cpus: frozenset[int] | None,
        timeout: float | None,
        on_progress: Callable[[dict], None] | None = None,
        log_name: str | None = None,
        probe: bool = True,
    ) -> Run:
        """One run of ``config`` in this side's worker, bound to ``cpus`` (None: as it is);
        its record, made by the worker or, for a run whose worker died, here."""
        backend = config.backend or configured_backend()
        worker = self.worker(backend)
        if not worker.alive:
            self.start(backend)
        if cpus is not None:
            worker.pin(cpus)
        pinned = ",".join(map(str, sorted(cpus))) if cpus is not None else ""
        reserved = self.threads or len(cpus or os.sched_getaffinity(0))
        placement = Placement("ab", "warm", os.uname().nodename, reserved, pinned)
        started_at = utc_now()
        outcome, cells = worker.run(
            config,
            placement,
            started_at=started_at,
            log_path=layout.log_path(self.log_dir.parent, log_name or config.run_id),
            timeout=timeout,
            on_progress=on_progress,
            probe=probe,
        )

        def make(*, status: str, error: str) -> Run:
            return run_record(
                config, None, placement, status=status, error=error, started_at=started_at
            )

        return record_of(cells, outcome, make)

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.stop()


# --- the measurement ---------------------------------------------------------------------------


def select(
    sides: dict[str, SideRunner],
    requested: Sequence[str],
    run_all: bool,
    backends: Sequence[str | None],
) -> list[str]:
    """The architectures to measure, checked against what each side's plugins register (each
    side's worker started for it): ``--all`` is every architecture both sides have; a name
    one side lacks is a ConfigError naming the side, before any run, and before the workers
    have imported their backends (their hellos come first)."""
    known: dict[str, list[str]] = {}
    every = dict.fromkeys(b or configured_backend() for b in backends)
    try:
        for name in SIDES:  # all at once: each worker's start is mostly its backend's import
            for backend in every:
                sides[name].launch(backend)
        for name in SIDES:
            for backend in every:
                known[name] = sides[name].start(backend, ready=False)
        selected = _selected(sides, known, requested, run_all)
        for name in SIDES:
            for backend in every:
                sides[name].start(backend)
        return selected
    except BaseException:
        for runner in sides.values():
            runner.stop()
        raise


def _selected(
    sides: dict[str, SideRunner],
    known: dict[str, list[str]],
    requested: Sequence[str],
    run_all: bool,
) -> list[str]:
    both = sorted(set(known["base"]) & set(known["head"]))
    if run_all:
        if requested:
            raise ConfigError("give architecture names or --all, not both")
        if not both:
            raise ConfigError("the two sides have no architecture in common")
        return both
    if not requested:
        raise ConfigError("name at least one architecture, or use --all")
    for architecture in requested:
        for name in SIDES:
            if architecture not in known[name]:
                listed = ", ".join(known[name]) or "none"
                raise ConfigError(
                    f"{sides[name].side.describe()} has no architecture {architecture!r} "
                    f"(it has: {listed})"
                )
    return list(dict.fromkeys(requested))


def measure(
    sides: dict[str, SideRunner],
    configs: Sequence[RunConfig],
    design: Design,
    *,
    output_dir: Path,
    mnist,
    plugins,
    store: Store | None = None,
    argv: Sequence[str] = (),
    on_round: Callable[[int, list[Verdict]], None] | None = None,
    rules: Sequence[FailRule] = (),
) -> tuple[list[Pair], list[Verdict], str]:
    """Run the pairs of ``design``; write both sides' sweeps, ``pairs.csv`` and ``ab.csv``
    into ``output_dir`` as each pair ends. Returns the pairs, the verdicts and why the
    measurement stopped."""
    design.check()
    output_dir = Path(output_dir)
    started = time.monotonic()
    writers, recorders, manifests = _start_sides(
        sides, configs, design, output_dir, mnist, plugins, store, argv
    )
    all_pairs: list[Pair] = []
    rounds_done = 0
    stopped = ""
    total_rounds = design.pairs if design.until is None else design.max_pairs
    cpus = sorted(os.sched_getaffinity(0))
    halves = (frozenset(cpus[: len(cpus) // 2]), frozenset(cpus[len(cpus) // 2 :]))
    verdicts: list[Verdict] = []
    try:
        if design.warmup:
            # A worker's first run pays one-time costs (its backend's kernels, pools and
            # caches) that later runs do not: each side runs one, recorded nowhere.
            for config in configs:
                order = "duet" if design.duet else "base,head"
                _run_pair(Pair(0, -1, config, order), sides, design, halves, "warmup-")
        while rounds_done < total_rounds:
            for pair in schedule(
                configs, range(rounds_done, rounds_done + 1), design.seed, design.duet
            ):
                _run_pair(pair, sides, design, halves)
                for name in SIDES:
                    run = pair.runs[name]
                    writers[name].append(run)
                    manifests[name].set_state(run.run_id, run.status)
                    if recorders[name] is not None:
                        recorders[name].record_run(run)
                all_pairs.append(pair)
                verdicts = evaluate(all_pairs, design, rules)
                write_pairs(all_pairs, PAIRS_CSV.of(output_dir))
                write_verdicts(verdicts, AB_CSV.of(output_dir))
            rounds_done += 1
            if on_round is not None:
                on_round(rounds_done, verdicts)
            if design.until is not None and rounds_done >= design.pairs:
                if precise_enough(verdicts, design):
                    stopped = f"every gated interval is within ±{design.until:.0%}"
                    break
            if design.max_minutes is not None:
                if time.monotonic() - started > design.max_minutes * 60:
                    stopped = f"--max-minutes {design.max_minutes:g} reached"
                    break
        else:
            stopped = (
                f"--max-pairs {design.max_pairs} reached"
                if design.until is not None
                else f"{design.pairs} pair(s) a configuration, as asked"
            )
    finally:
        for runner in sides.values():
            runner.stop()
        for recorder in recorders.values():
            if recorder is not None:
                recorder.close()
    for name in SIDES:
        side_dir = output_dir / name
        plugins.write_report(record.read(side_dir), side_dir)
    return all_pairs, verdicts, stopped


def _start_sides(sides, configs, design, output_dir, mnist, plugins, store, argv):
    """Each side's sweep directory: its manifest (every pair's run planned), samples,
    environment (the side's commit), and its sweep in the results database."""
    planned = [
        replace(c, repeat=r)
        for r in range(design.max_pairs if design.until else design.pairs)
        for c in configs
    ]
    writers, recorders, manifests = {}, {}, {}
    for name in SIDES:
        side_dir = output_dir / name
        side_dir.mkdir(parents=True, exist_ok=True)
        # The head's sweep starts after the base's, if only by a second: a history of the
        # store's sweeps puts the head after the base it was measured against.
        after = manifests[SIDES[0]].created_at if manifests else ""
        options = {"executor": "ab", "side": name}
        manifest = Manifest.create(side_dir, planned, options, after=after)
        write_samples(side_dir, mnist, configs[0].test_samples)
        side = sides[name].side
        environment = describe_sweep(
            mnist, plugins, configs, argv=argv, executor="ab", sweep_id=manifest.sweep_id
        )
        environment.update(
            ab={"side": name, "ref": side.ref, "commit": side.commit, "dirty": side.dirty},
            git_commit=side.commit or environment.get("git_commit"),
            commit_info={
                **(environment.get("commit_info") or {}),
                "id": side.commit,
                "dirty": side.dirty,
            }
            if side.commit
            else environment.get("commit_info"),
        )
        write_environment(side_dir, environment)
        recorder = None if store is None else SweepRecorder(store, manifest.sweep_id, side_dir)
        if recorder is not None:
            recorder.record_sweep(environment, started_at=manifest.created_at)
        writers[name] = RunsWriter(side_dir, manifest.order)
        recorders[name] = recorder
        manifests[name] = manifest
    return writers, recorders, manifests


def _run_pair(
    pair: Pair, sides: dict[str, SideRunner], design: Design, halves, log_prefix: str = ""
) -> None:
    """Run one pair: its two runs one after the other, or at once (duet), each bound to its
    own half of the CPUs; which half alternates with the pairs, so a faster core favours
    neither side."""
    log_name = f"{log_prefix}{pair.config.run_id}" if log_prefix else None
    if not design.duet:
        for name in pair.order.split(","):
            pair.runs[name] = sides[name].run(
                pair.config,
                cpus=design.pinned_cpus(),
                timeout=design.timeout,
                log_name=log_name,
                probe=design.probe,
            )
        return
    first = halves if pair.index % 2 == 0 else halves[::-1]
    barrier = threading.Barrier(2)
    results: dict[str, Run] = {}

    def one(name: str, cpus: frozenset[int]) -> None:
        barrier.wait()  # both workers started before the pairs: the two runs start at once
        results[name] = sides[name].run(
            pair.config, cpus=cpus, timeout=design.timeout, log_name=log_name, probe=design.probe
        )

    threads = [
        threading.Thread(target=one, args=(name, cpus))
        for name, cpus in zip(SIDES, first, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pair.runs.update(results)


def write_pairs(pairs: Sequence[Pair], path: Path) -> Path:
    """``pairs.csv``: one row per pair, in the order they ran, each compared metric's ratio."""
    metrics = compared_metrics()
    header = [
        "pair", "round", "config_id", "backend", "order", "base_run_id", "head_run_id",
        "base_status", "head_status", *(f"{name}_ratio" for name in metrics),
    ]  # fmt: skip
    with atomic_writer(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for pair in pairs:
            base, head = pair.runs.get("base"), pair.runs.get("head")
            ratios = []
            for name in metrics:
                b = getattr(base, name) if base else None
                h = getattr(head, name) if head else None
                ratios.append(repr(h / b) if pair.ok and b and h is not None else "")
            writer.writerow(
                [
                    pair.index, pair.round, pair.config.config_id, pair.config.backend or "",
                    pair.order, base.run_id if base else "", head.run_id if head else "",
                    base.status if base else "", head.status if head else "", *ratios,
                ]
            )  # fmt: skip
    return path
