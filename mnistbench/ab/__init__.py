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

from mnistbench.ab.design import (
    DEFAULT_GATE,
    DEFAULT_MARGIN,
    SIDES,
    Design,
    Pair,
    schedule,
)
from mnistbench.ab.pairs import PAIRS_CSV, SideRunner, measure, select, write_pairs
from mnistbench.ab.verdicts import (
    AB_CSV,
    CANNOT_TELL,
    IMPROVED,
    NO_CHANGE,
    REGRESSED,
    Verdict,
    digest,
    evaluate,
    gated,
    verdict_text,
    write_verdicts,
)

__all__ = [
    "AB_CSV",
    "CANNOT_TELL",
    "DEFAULT_GATE",
    "DEFAULT_MARGIN",
    "IMPROVED",
    "NO_CHANGE",
    "PAIRS_CSV",
    "REGRESSED",
    "SIDES",
    "Design",
    "Pair",
    "SideRunner",
    "Verdict",
    "digest",
    "evaluate",
    "gated",
    "measure",
    "schedule",
    "select",
    "verdict_text",
    "write_pairs",
    "write_verdicts",
]
