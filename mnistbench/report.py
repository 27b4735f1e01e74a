"""The built-in reporter: ``comparison.csv``, the figures and ``report.html`` of one sweep.

``mnistbench_write_report`` is the core's implementation of the report hook and only ties
the parts together: the headline table (:func:`mnistbench.summary.comparison_table`), one
drawing per figure (:mod:`mnistbench.figures`), each written as a PNG and handed as SVG
to the page (:mod:`mnistbench.pages.report`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import mnistbench
from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.figures import comparison, curves, inference, predictions
from mnistbench.figures.style import save, svg
from mnistbench.pages.report import write_html_report
from mnistbench.summary import comparison_table

if TYPE_CHECKING:
    import pandas as pd


# trylast: the other reporters (pytest-benchmark.json, third parties') write first, so that
# report.html, written last, links every file of the directory.
@mnistbench.hookimpl(trylast=True)
def mnistbench_write_report(runs: pd.DataFrame, output_dir: Path) -> list[Path]:
    """Write ``comparison.csv``, ``comparison.png``, ``curves.png``, ``predictions.png``,
    ``inference.png`` and ``report.html``.

    ``predictions.png`` only when ``output_dir/samples.npz`` exists and a successful run
    recorded ``sample_predictions``; ``inference.png`` only when a successful run recorded
    an ``inference_curve`` (``--inference-batch-sizes``). Each figure is drawn once, saved
    as its PNG and shown in ``report.html`` as SVG. ``report.html`` comes last: it links
    every file in the directory, so this reporter runs after the other reporters. Every
    file is written atomically. Returns the paths written, in that order.
    """
    output_dir = Path(output_dir)
    table = comparison_table(runs)
    csv_path = layout.COMPARISON_CSV.of(output_dir)
    with atomic_writer(csv_path, "w") as handle:
        table.to_csv(handle, index=False)
    drawn = {layout.COMPARISON_PNG: comparison.draw(runs), layout.CURVES_PNG: curves.draw(runs)}
    samples = layout.SAMPLES_NPZ.of(output_dir)
    if samples.is_file() and predictions.sample_predictions(runs):
        drawn[layout.PREDICTIONS_PNG] = predictions.draw(runs, samples)
    if not inference.inference_curve_data(runs).empty:
        drawn[layout.INFERENCE_PNG] = inference.draw(runs)
    written = [csv_path]
    figures = {}
    for file, fig in drawn.items():
        written.append(save(fig, file.of(output_dir)))
        figures[str(file)] = svg(fig, file.description)
    written.append(write_html_report(runs, output_dir, figures, table))
    return written
