"""``mnistbench ab``: two versions of the code measured against each other, in pairs.

A regression of 10% hides in the ±20% that runs on a shared machine spread by. Pairing
uncovers it: each *pair* is one run of a configuration on each side (:mod:`mnistbench.checkouts`),
back to back in a seeded random order (randomized multiple interleaved trials, Abedi &
Brecht, ICPE 2017), or at the same moment with each side pinned to its own half of the
CPUs (``duet``, Bulej et al., ICPE 2020), so that what the machine does to one run it does
to the other. Each pair gives a log-ratio ``ln(head / base)``; the pairs' mean and spread
give the ratio with its confidence interval and a paired t-test
(:func:`mnistbench.stats.paired_ratio`), and the number of pairs the interval needs to
decide (:func:`mnistbench.stats.pairs_needed`).

Each side runs in a warm worker of its own environment (:mod:`mnistbench.serve`): the
backend is imported once per side, and every run of a pair goes through the same phases
as any sweep's (probes, run, record). Both sides' runs are normal sweep directories
(``base/``, ``head/``) that ``report``, ``compare`` and ``history`` read; ``pairs.csv`` has
one row per pair and ``ab.csv`` the verdicts, both rewritten as each pair ends.
"""

from __future__ import annotations

import csv
import math
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mnistbench import layout, record
from mnistbench.atomic import atomic_writer
from mnistbench.backends import configured_backend, thread_limit_env
from mnistbench.checkouts import Side
from mnistbench.columns import HIGHER, metric
from mnistbench.db import SweepRecorder
from mnistbench.environment import describe_environment, write_environment
from mnistbench.errors import ConfigError, MnistbenchError
from mnistbench.gates import FailRule, compared_metrics
from mnistbench.manifest import Manifest
from mnistbench.outputs.digest import ABDigest, ABRow
from mnistbench.plan import RunConfig
from mnistbench.record import Run, RunsWriter, utc_now
from mnistbench.serve import Spawn, WarmWorker, WorkerGone, record_of
from mnistbench.stats import ALPHA, PAIRED_T, Ratio, holm, paired_ratio, pairs_needed
from mnistbench.sweep import write_samples
from mnistbench.worker import Placement, run_record

#: What ``--until`` and the "no significant change" verdict ask of an interval by default:
#: within ±5% of the ratio.
DEFAULT_MARGIN = 0.05
#: The metric gated when no ``--fail`` rule names one: the whole fit's wall time.
DEFAULT_GATE = "fit_seconds"
PAIRS_CSV = layout.File("pairs.csv", "one row per pair: configuration, order, both runs, ratios")
AB_CSV = layout.File("ab.csv", "per configuration and metric: head/base ratio, interval, verdict")
SIDES = ("base", "head")

# The verdicts of a configuration's metric.
IMPROVED = "improved"
REGRESSED = "regressed"
NO_CHANGE = "no significant change"
CANNOT_TELL = "cannot tell"


@dataclass(frozen=True)
class Design:
    """How an A/B measurement is made.

    :param pairs: pairs per configuration; with ``until``, the pairs made before the
        intervals are first looked at.
    :param until: add rounds of pairs until every gated metric's interval is within
        ``±until`` (0.05 for ±5%), or ``max_pairs`` / ``max_minutes`` is reached.
    :param duet: run each pair's two runs at the same moment, each side pinned to its
        own half of the CPUs with its thread pools sized to it.
    :param seed: the seed of the orders (and the runs' seeds: pair ``k`` trains with
        ``seed + k`` on both sides).
    :param gate: the metrics whose intervals ``until`` watches.
    :param margin: the interval's half-width within which a change is no change.
    :param threads: the thread pools of each run; None: all CPUs (duet: half of them).
    :param timeout: seconds a run may take before its worker is stopped.
    :param warmup: run each configuration once on each side before the pairs, recorded
        nowhere: a worker's first run pays one-time costs the others do not.
    """

    pairs: int = 10
    until: float | None = None
    max_pairs: int = 40
    max_minutes: float | None = None
    duet: bool = False
    seed: int = 0
    gate: tuple[str, ...] = (DEFAULT_GATE,)
    margin: float = DEFAULT_MARGIN
    threads: int | None = None
    timeout: float | None = None
    warmup: bool = True

    def check(self) -> None:
        if self.pairs < 1:
            raise ConfigError(f"--pairs must be at least 1, got {self.pairs}")
        if self.until is not None and not 0 < self.until < 1:
            raise ConfigError(
                f"--until must be a percentage above 0% and below 100%, got {self.until:.0%}"
            )
        if self.max_pairs < self.pairs:
            raise ConfigError(f"--max-pairs ({self.max_pairs}) is below --pairs ({self.pairs})")
        cpus = len(os.sched_getaffinity(0))
        if self.duet and cpus < 2:
            raise ConfigError("--duet needs at least 2 CPUs: one half for each side")
        if self.threads is not None and self.threads > cpus:
            raise ConfigError(f"--threads {self.threads} is more than the {cpus} CPUs here")
        if self.duet and self.threads is not None and self.threads > cpus // 2:
            raise ConfigError(
                f"--threads {self.threads} does not fit half of the {cpus} CPUs here (--duet)"
            )

    def side_threads(self) -> int | None:
        """Each side's thread pools: ``threads``, else with a duet half of the CPUs."""
        if self.duet and self.threads is None:
            return len(os.sched_getaffinity(0)) // 2
        return self.threads


@dataclass
class Pair:
    """One pair: a configuration run once on each side, in ``order``."""

    index: int  # 0-based, over the whole measurement
    round: int  # the round (one pair per configuration each)
    config: RunConfig
    order: str  # "base,head", "head,base" or "duet"
    runs: dict[str, Run] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(side in self.runs and self.runs[side].ok for side in SIDES)


@dataclass(frozen=True)
class Verdict:
    """One configuration and metric over the pairs: the ratio head/base with its interval
    (:class:`mnistbench.stats.Ratio`), the sides' medians, the verdict and what it needs."""

    config_id: str
    backend: str
    metric: str
    base_median: float
    head_median: float
    ratio: Ratio
    verdict: str
    pairs_needed: int | None
    p_holm: float = math.nan
    failed_rules: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.config_id if not self.backend else f"{self.config_id} ({self.backend})"


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
                self.side.python, self.side.environ(extra), backend=backend, cwd=self.log_dir
            )
            self.workers[backend] = WarmWorker(spawn, self.data, self.log_dir)
        return self.workers[backend]

    def start(self, backend: str) -> list[str]:
        """Start this side's worker of ``backend``; the architectures its plugins register
        (the worker's hello). One line naming its log when it does not start."""
        worker = self.worker(backend)
        if not worker.alive:
            try:
                worker.start()
            except WorkerGone as error:
                raise MnistbenchError(
                    f"the {self.side.describe()} worker did not start ({error}); see "
                    f"{self.log_dir / 'worker-start.log'}"
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
    one side lacks is a ConfigError naming the side, before any run."""
    known: dict[str, list[str]] = {}
    try:
        for name in SIDES:
            for backend in dict.fromkeys(b or configured_backend() for b in backends):
                known[name] = sides[name].start(backend)
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
    except BaseException:
        for runner in sides.values():
            runner.stop()
        raise


def schedule(configs: Sequence[RunConfig], rounds: range, seed: int, duet: bool) -> list[Pair]:
    """The pairs of ``rounds``: each round one pair per configuration, the configurations in
    a random order within the round and, in sequential mode, the two sides in a random
    order within the pair; the same seed gives the same schedule."""
    pairs = []
    index = len(configs) * rounds.start
    for round_ in rounds:
        rng = random.Random(f"{seed}:{round_}")
        order = list(configs)
        rng.shuffle(order)
        for config in order:
            sides = "duet" if duet else ",".join(rng.sample(SIDES, 2))
            run_config = replace(config, repeat=round_, seed=config.seed)
            pairs.append(Pair(index, round_, run_config, sides))
            index += 1
    return pairs


def measure(
    sides: dict[str, SideRunner],
    configs: Sequence[RunConfig],
    design: Design,
    *,
    output_dir: Path,
    mnist,
    plugins,
    db: Path | None = None,
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
        sides, configs, design, output_dir, mnist, plugins, db, argv
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
                if _precise_enough(verdicts, design):
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


def _start_sides(sides, configs, design, output_dir, mnist, plugins, db, argv):
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
        manifest = Manifest.create(side_dir, planned, {"executor": "ab", "side": name})
        write_samples(side_dir, mnist, configs[0].test_samples)
        side = sides[name].side
        environment = describe_environment(
            backend=configured_backend(),
            data={
                "source": mnist.source,
                "origin": mnist.origin,
                "cache_path": str(mnist.cache_path),
            },
            plugins=plugins,
            argv=list(argv),
            backends=sorted({c.backend or configured_backend() for c in configs}),
            executor="ab",
            sweep_id=manifest.sweep_id,
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
        recorder = None if db is None else SweepRecorder(db, manifest.sweep_id, side_dir)
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
                pair.config, cpus=None, timeout=design.timeout, log_name=log_name
            )
        return
    first = halves if pair.index % 2 == 0 else halves[::-1]
    barrier = threading.Barrier(2)
    results: dict[str, Run] = {}

    def one(name: str, cpus: frozenset[int]) -> None:
        barrier.wait()  # both workers started before the pairs: the two runs start at once
        results[name] = sides[name].run(
            pair.config, cpus=cpus, timeout=design.timeout, log_name=log_name
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


# --- the statistics -------------------------------------------------------------------------


def evaluate(
    pairs: Sequence[Pair], design: Design, rules: Sequence[FailRule] = ()
) -> list[Verdict]:
    """Per configuration and compared metric, the ratio head/base over the pairs whose runs
    both succeeded, its interval, test and verdict; the ``--fail`` rules' tests adjusted
    together by Holm's method (:func:`mnistbench.stats.holm`), a rule failing only when its
    metric is worse by more than its threshold and significantly so after adjustment."""
    keys = list(dict.fromkeys((p.config.config_id, p.config.backend or "") for p in pairs))
    verdicts = []
    for config_id, backend in keys:
        done = [
            p
            for p in pairs
            if p.ok and p.config.config_id == config_id and (p.config.backend or "") == backend
        ]
        for name in compared_metrics():
            base = [getattr(p.runs["base"], name) for p in done]
            head = [getattr(p.runs["head"], name) for p in done]
            if all(v is None for v in base + head):
                continue
            verdicts.append(_verdict(config_id, backend, name, base, head, design.margin))
    gated = [i for i, v in enumerate(verdicts) if any(r.metric == v.metric for r in rules)]
    adjusted = holm([verdicts[i].ratio.p_value for i in gated])
    for i, p_holm in zip(gated, adjusted, strict=True):
        verdict = verdicts[i]
        failed = tuple(
            str(rule)
            for rule in rules
            if rule.metric == verdict.metric
            and _exceeded(rule, verdict)
            and p_holm < ALPHA
            and verdict.verdict == REGRESSED
        )
        verdicts[i] = replace(verdict, p_holm=p_holm, failed_rules=failed)
    return verdicts


def _median(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(known) if known else math.nan


def _verdict(config_id, backend, name, base, head, margin) -> Verdict:
    ratio = paired_ratio(base, head)
    needed = pairs_needed(base, head, margin)
    better = metric(name).better
    if ratio.n >= 2 and ratio.p_value < ALPHA:
        worse = ratio.ratio < 1 if better == HIGHER else ratio.ratio > 1
        verdict = REGRESSED if worse else IMPROVED
    elif ratio.n >= 2 and ratio.low >= 1 / (1 + margin) and ratio.high <= 1 + margin:
        verdict = NO_CHANGE
    else:
        verdict = CANNOT_TELL
    return Verdict(config_id, backend, name, _median(base), _median(head), ratio, verdict, needed)


def _exceeded(rule: FailRule, verdict: Verdict) -> bool:
    if rule.relative:
        return rule.exceeded(1.0, verdict.ratio.ratio)
    return rule.exceeded(verdict.base_median, verdict.head_median)


def _precise_enough(verdicts: Sequence[Verdict], design: Design) -> bool:
    target = math.log(1 + design.until)
    gated = [v for v in verdicts if v.metric in design.gate]
    return bool(gated) and all(
        not math.isnan(v.ratio.half_width) and v.ratio.half_width <= target for v in gated
    )


def verdict_text(verdict: Verdict) -> str:
    """``regressed``, ``no significant change``, ``cannot tell (needs about 14 pairs)``."""
    if verdict.verdict == CANNOT_TELL:
        if verdict.pairs_needed is None:
            return f"{CANNOT_TELL} (needs at least 2 pairs)"
        return f"{CANNOT_TELL} (needs about {verdict.pairs_needed} pairs)"
    return verdict.verdict


# --- the files ---------------------------------------------------------------------------------


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


AB_COLUMNS = (
    "config_id", "backend", "metric", "better", "pairs", "base_median", "head_median",
    "ratio", "ratio_low", "ratio_high", "p_value", "p_holm", "test", "verdict",
    "pairs_needed", "failed_rule",
)  # fmt: skip


def write_verdicts(verdicts: Sequence[Verdict], path: Path) -> Path:
    """``ab.csv``: one row per configuration and metric (:data:`AB_COLUMNS`)."""

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return repr(value) if isinstance(value, float) else str(value)

    with atomic_writer(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(AB_COLUMNS)
        for v in verdicts:
            writer.writerow(
                [
                    cell(x)
                    for x in (
                        v.config_id, v.backend, v.metric, metric(v.metric).better, v.ratio.n,
                        v.base_median, v.head_median, v.ratio.ratio, v.ratio.low,
                        v.ratio.high, v.ratio.p_value, v.p_holm, v.ratio.method,
                        verdict_text(v), v.pairs_needed, "; ".join(v.failed_rules),
                    )
                ]
            )  # fmt: skip
    return path


def digest(
    verdicts: Sequence[Verdict],
    pairs: Sequence[Pair],
    sides: dict[str, Side],
    stopped: str,
    design: Design,
) -> ABDigest:
    """The digest every output format renders (:class:`mnistbench.outputs.digest.ABDigest`):
    gated metrics first, then the others in ``runs.csv`` order."""
    gated = set(design.gate)
    rows = [
        ABRow(
            config=v.label,
            metric=v.metric,
            better=metric(v.metric).better,
            base=v.base_median,
            head=v.head_median,
            ratio=v.ratio.ratio,
            low=v.ratio.low,
            high=v.ratio.high,
            p_value=v.ratio.p_value,
            p_holm=v.p_holm,
            pairs=v.ratio.n,
            verdict=verdict_text(v),
            gated=v.metric in gated,
            failed_rules=v.failed_rules,
        )
        for v in verdicts
    ]
    rows.sort(key=lambda row: not row.gated)  # stable: runs.csv order within each
    failing = tuple(
        f"{v.label} {v.metric}: ×{v.ratio.ratio:.3f} [{v.ratio.low:.3f}, {v.ratio.high:.3f}] "
        f"over {v.ratio.n} pairs (p={v.ratio.p_value:.2g}, Holm-adjusted {v.p_holm:.2g}) "
        f"exceeds {rule}"
        for v in verdicts
        for rule in v.failed_rules
    )
    mode = (
        "duet: both runs of a pair at once, pinned"
        if design.duet
        else ("sequential pairs in a seeded random order")
    )
    return ABDigest(
        base=sides["base"].describe(),
        head=sides["head"].describe(),
        mode=mode,
        pairs=len(pairs),
        failed_pairs=sum(not pair.ok for pair in pairs),
        stopped=stopped,
        method=PAIRED_T,
        rows=tuple(rows),
        failing=failing,
        machine=("both sides ran on this machine, " + os.uname().nodename,),
    )
