"""What the pairs say: each configuration's and metric's ratio head/base with its interval,
the verdict, the ``--fail`` rules (Holm-adjusted), ``ab.csv`` and the digest the output
formats render."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mnistbench import layout
from mnistbench.ab.design import DEFAULT_GATE, FALLBACK_GATE, Design, Pair
from mnistbench.atomic import atomic_writer
from mnistbench.checkouts import Side
from mnistbench.columns import HIGHER, metric
from mnistbench.environment import (
    describe_machine,
    machine_identity,
)
from mnistbench.gates import FailRule, compared_metrics
from mnistbench.outputs.digest import ABDigest, ABRow
from mnistbench.stats import ALPHA, PAIRED_T, Ratio, holm, paired_ratio, pairs_needed

AB_CSV = layout.File("ab.csv", "per configuration and metric: head/base ratio, interval, verdict")

# The verdicts of a configuration's metric.
IMPROVED = "improved"
REGRESSED = "regressed"
NO_CHANGE = "no significant change"
CANNOT_TELL = "cannot tell"


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


def gated(verdicts: Sequence[Verdict], design: Design) -> set[str]:
    """The metrics ``design`` gates, as ``verdicts`` measured them: ``steady_step_ms`` (the
    default) gives way to ``fit_seconds`` where no run was long enough to measure it."""
    names = set(design.gate)
    if DEFAULT_GATE in names and not any(v.metric == DEFAULT_GATE for v in verdicts):
        names = (names - {DEFAULT_GATE}) | {FALLBACK_GATE}
    return names


def precise_enough(verdicts: Sequence[Verdict], design: Design) -> bool:
    """Whether every gated metric's interval is within ``±design.until`` (``--until``)."""
    target = math.log(1 + design.until)
    watched = gated(verdicts, design)
    gated_verdicts = [v for v in verdicts if v.metric in watched]
    return bool(gated_verdicts) and all(
        not math.isnan(v.ratio.half_width) and v.ratio.half_width <= target for v in gated_verdicts
    )


def verdict_text(verdict: Verdict) -> str:
    """``regressed``, ``no significant change``, ``cannot tell (needs about 14 pairs)``."""
    if verdict.verdict == CANNOT_TELL:
        if verdict.pairs_needed is None:
            return f"{CANNOT_TELL} (needs at least 2 pairs)"
        return f"{CANNOT_TELL} (needs about {verdict.pairs_needed} pairs)"
    return verdict.verdict


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
    watched = gated(verdicts, design)
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
            gated=v.metric in watched,
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
        # One machine by construction: both sides' workers are this process's children.
        machine=(
            f"both sides ran on one machine: {machine_identity({'machine': describe_machine()})}",
        ),
    )
