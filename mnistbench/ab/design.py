"""What an A/B measurement is: its design (pairs, modes, gates), its pairs and their order."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mnistbench.errors import ConfigError
from mnistbench.plan import RunConfig
from mnistbench.record import Run

#: What ``--until`` and the "no significant change" verdict ask of an interval by default:
#: within ±5% of the ratio.
DEFAULT_MARGIN = 0.05
#: The metric gated when no ``--fail`` rule names one: the median training step, which a
#: slowdown in the model's code reaches whole and which spreads least for what it sees
#: (benchmarks/precision.py; docs/ab.md, "Which metric to gate").
DEFAULT_GATE = "steady_step_ms"
#: Watched in its place where the runs were too short to measure it (fewer than two blocks
#: of 20 steps).
FALLBACK_GATE = "fit_seconds"
SIDES = ("base", "head")


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
    :param pin: in sequential pairs, bind both sides' workers to the same CPUs, as many as
        ``threads`` (the first of those this process may use); a duet always pins.
    :param timeout: seconds a run may take before its worker is stopped.
    :param probe: run the speed probe before and after each run, as ``mnistbench run``
        does; off by default: a pair's ratio cancels the machine's speed, and the probes
        would put time (about 1.5 s here) between a pair's two runs.
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
    pin: bool = False
    timeout: float | None = None
    probe: bool = False
    warmup: bool = True

    def check(self) -> None:
        if self.pairs < 1:
            raise ConfigError(f"--pairs must be at least 1, got {self.pairs}")
        if self.until is not None and not 0 < self.until < 1:
            raise ConfigError(
                f"--until must be a percentage above 0% and below 100%, got {self.until:.0%}"
            )
        if self.until is not None and self.max_pairs < self.pairs:
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

    def pinned_cpus(self) -> frozenset[int] | None:
        """The CPUs both sides' sequential runs are bound to (``pin``); None: unbound."""
        if not self.pin or self.duet:
            return None
        cpus = sorted(os.sched_getaffinity(0))
        return frozenset(cpus[: self.threads or len(cpus)])

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
