"""Whether two sides' machines compare: their speeds by the speed probe, and what else
differs under the probe (CPU models, backend and probe versions, the machines themselves).

:func:`machine_comparison` sums it up for ``mnistbench compare`` as a
:class:`MachineSpeed`; :func:`normalized_lines` says it in lines, each configuration's fit
time raw and normalized beside the machines' speeds. A probe only measures the machine
when everything under it is the same: otherwise the normalized figures are withheld, with
the reason, never silently normalized across.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnistbench.compare import ONLY_IN_BASELINE, ONLY_IN_CANDIDATE, keyed, median, row_labels
from mnistbench.environment import machine_identity
from mnistbench.record import in_order

if TYPE_CHECKING:
    import pandas as pd

#: Probe ratios closer to 1 than this are "the same speed" (the probe's own run-to-run spread).
SAME_SPEED = 0.10


@dataclass(frozen=True)
class MachineSpeed:
    """How fast each side's machine was by the speed probe, and whether the two sides'
    normalized figures compare at all.

    ``baseline_probe``, ``candidate_probe``: median ``probe_seconds`` of each side's ok
    runs (NaN without a probe); ``withheld``: why normalized figures must not be compared
    ("" when they may): a probe only measures the machine when everything under it is the
    same, so different CPU models, backend versions or probe versions are reported, never
    silently normalized across.
    """

    baseline_probe: float
    candidate_probe: float
    withheld: str = ""
    #: Each side's machine (:func:`mnistbench.environment.machine_identity`), "" when unknown.
    machines: tuple[str, str] = ("", "")

    def machines_line(self) -> str:
        """``the sides ran on different machines: baseline on A, candidate on B``; "" when
        they ran on one machine or a side's is unknown."""
        base, cand = self.machines
        if not base or not cand or base == cand:
            return ""
        return f"the sides ran on different machines: baseline on {base}, candidate on {cand}"

    @property
    def ratio(self) -> float:
        """Candidate probe / baseline probe: above 1, the candidate's machine was slower."""
        if math.isnan(self.baseline_probe) or not self.baseline_probe:
            return math.nan
        return self.candidate_probe / self.baseline_probe

    def line(self) -> str:
        """``candidate's machine 2.10× slower by the probe (0.055 s vs 0.026 s)``."""
        if self.withheld:
            return f"normalized figures not compared: {self.withheld}; raw figures only"
        ratio = self.ratio
        if math.isnan(ratio):
            return "no machine speed to compare: a side has no successful run"
        probes = f"probe {self.candidate_probe:.3g} s vs {self.baseline_probe:.3g} s"
        if ratio > 1 + SAME_SPEED:
            return f"candidate's machine {ratio:.2f}× slower by the probe ({probes})"
        if ratio < 1 / (1 + SAME_SPEED):
            return f"candidate's machine {1 / ratio:.2f}× faster by the probe ({probes})"
        return f"both machines ran at the same speed by the probe (×{ratio:.2f}, {probes})"


def _distinct_text(runs: pd.DataFrame, column: str) -> list[str]:
    return sorted({value for value in runs[column] if value})


def machine_comparison(
    baseline: pd.DataFrame,
    candidate: pd.DataFrame,
    baseline_environment: dict | None = None,
    candidate_environment: dict | None = None,
) -> MachineSpeed:
    """The two sides' machine speeds by the probe, and whether normalized figures compare.

    ``*_environment`` are the sides' ``environment.json`` (for the CPU model), when known.
    """
    base, cand = keyed(baseline), keyed(candidate)
    probes = [median(side["probe_seconds"].dropna()) for side in (base, cand)]
    reasons = []
    for side, runs, probe in zip(("baseline", "candidate"), (base, cand), probes, strict=True):
        # A side with no successful run has nothing to normalize: its configurations are
        # "only in" the other side, and gated as such, not withheld.
        if math.isnan(probe) and not runs.empty:
            reasons.append(f"the {side}'s runs have no speed probe")
    if not any(math.isnan(probe) for probe in probes):
        versions = [  # numbers: a column with an empty cell reads as floats
            [f"{v:g}" for v in sorted(set(side["probe_version"].dropna()))] for side in (base, cand)
        ]
        if versions[0] != versions[1]:
            reasons.append(
                f"probe versions differ ({'/'.join(versions[0])} vs {'/'.join(versions[1])})"
            )
    cpus = [(env or {}).get("cpu") for env in (baseline_environment, candidate_environment)]
    if all(cpus) and cpus[0] != cpus[1]:
        reasons.append(f"CPU models differ ({cpus[0]} vs {cpus[1]})")
    for backend in in_order([*base["_backend"], *cand["_backend"]]):
        b, c = (
            _distinct_text(side[side["_backend"] == backend], "backend_version")
            for side in (base, cand)
        )
        if b and c and b != c:
            reasons.append(
                f"{backend or 'backend'} versions differ ({'/'.join(b)} vs {'/'.join(c)})"
            )
    identities = tuple(
        machine_identity(env) if env else ""
        for env in (baseline_environment, candidate_environment)
    )
    return MachineSpeed(*probes, "; ".join(reasons), identities)


def normalized_lines(table: pd.DataFrame, machines: MachineSpeed) -> list[str]:
    """The machine-speed line, then per configuration its fit time raw and normalized:

    ``candidate's machine 2.10× slower by the probe (...)`` and
    ``dnn: fit time ×2.07 (regressed); normalized ×0.99: no significant change``.
    """
    lines = [line for line in (machines.machines_line(), machines.line()) if line]
    if machines.withheld:
        return lines
    fit = table["metric"] == "fit_seconds"
    for name, (_, row) in zip(
        [n for n, keep in zip(row_labels(table), fit, strict=True) if keep],
        table[fit].iterrows(),
        strict=True,
    ):
        if not row["normalized_verdict"] or row["verdict"] in (ONLY_IN_BASELINE, ONLY_IN_CANDIDATE):
            continue
        lines.append(
            f"{name}: fit time ×{row['ratio']:.2f} ({row['verdict']}); "
            f"normalized ×{row['normalized_ratio']:.2f}: {row['normalized_verdict']}"
        )
    return lines
