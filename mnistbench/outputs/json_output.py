"""JSON for CI: a comparison or a sweep for machines, the same content as the Markdown.

:func:`compare_json` renders a :class:`mnistbench.outputs.digest.ComparisonDigest` (what
``mnistbench compare --format json`` prints) and :func:`sweep_json` a
:class:`mnistbench.outputs.digest.SweepDigest` (``mnistbench report --format json``). Numbers
stay numbers in the metric's unit (the column of ``runs.csv`` of the same name); a
missing one (NaN) is ``null``. Nothing is cut: a program reads it, not GitHub.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import mnistbench
from mnistbench.format import plain
from mnistbench.outputs import Output, OutputFormat
from mnistbench.outputs.digest import ABDigest, ComparisonDigest, SweepDigest


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(plain(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def compare_json(digest: ComparisonDigest) -> str:
    """A comparison as JSON: an object with

    - ``verdicts``: rows per verdict (only the verdicts that occur);
    - ``failing``: one line per failing ``--fail`` rule, [] when none;
    - ``machine``: the machine-speed lines;
    - ``work_differences``: the configurations whose sides did different work;
    - ``rows``: one object per configuration and metric, regressions first, with the
      fields of :class:`mnistbench.outputs.digest.ComparedRow` (``baseline`` and ``candidate``
      are the medians, ``failed_rules`` a list).
    """
    return _dumps(
        {
            "verdicts": digest.verdicts,
            "failing": digest.failing,
            "machine": digest.machine,
            "work_differences": digest.work_differences,
            "rows": [asdict(row) for row in digest.rows],
        }
    )


def sweep_json(digest: SweepDigest) -> str:
    """A sweep's headline table as JSON: an object with ``configurations``, ``runs``
    (successful) and ``failed`` counts, ``metrics`` (the headline metrics, in ``runs.csv``
    order) and ``configs``: one object per configuration with the fields of
    :class:`mnistbench.outputs.digest.SweepConfig`, ``metrics`` mapping each metric to its
    ``median``, ``min``, ``max``, ``cv`` and ``noisy``."""
    return _dumps(
        {
            "configurations": len(digest.configs),
            "runs": digest.runs,
            "failed": digest.failed,
            "metrics": digest.metrics,
            "configs": [asdict(config) for config in digest.configs],
        }
    )


def ab_json(digest: ABDigest) -> str:
    """An A/B measurement as JSON: the fields of
    :class:`mnistbench.outputs.digest.ABDigest`, ``rows`` one object per configuration and
    metric (:class:`mnistbench.outputs.digest.ABRow`); a missing number is ``null``."""
    return _dumps(asdict(digest))


class JsonFormat(OutputFormat):
    """JSON for programs: the same content as the Markdown, nothing cut."""

    name = "json"
    description = "JSON for programs"

    def compare(self, digest: ComparisonDigest, out: Output) -> None:
        out.write(compare_json(digest))

    def sweep(self, digest: SweepDigest, out: Output) -> None:
        out.write(sweep_json(digest))

    def ab(self, digest: ABDigest, out: Output) -> None:
        out.write(ab_json(digest))


@mnistbench.hookimpl
def mnistbench_register_output_formats(register):
    register(JsonFormat())
