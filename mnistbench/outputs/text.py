"""``--format text``, the default: the terminal's tables, drawn with rich."""

from __future__ import annotations

from rich import box
from rich.table import Table

import mnistbench
from mnistbench import format as fmt
from mnistbench.columns import metric
from mnistbench.compare import DIFFERENT_WORK, IMPROVED, REGRESSED
from mnistbench.outputs import Output, OutputFormat
from mnistbench.outputs.digest import ABDigest, ComparisonDigest, SweepDigest
from mnistbench.stats import NOISY_CV

_VERDICT_COLORS = {IMPROVED: "green", REGRESSED: "red", DIFFERENT_WORK: "yellow"}


def _p(p_value: float, p_holm: float) -> str:
    """The p-value, and under it the Holm-adjusted one where a ``--fail`` rule gates it."""
    text = fmt.spec(p_value, ".3f")
    return text if fmt.missing(p_holm) or p_holm == p_value else f"{text}\nHolm {p_holm:.3f}"


def _interval(low: float, high: float) -> str:
    """A ratio's 95% interval, compact for a table: ``1.16–1.24``; "-" when unknown."""
    return "-" if fmt.missing(low) or fmt.missing(high) else f"{low:.2f}–{high:.2f}"


#: The metrics the sweep's medians table shows, each with its range over the repeats: with
#: more, the table no longer fits a terminal (every metric's spread is in comparison.csv).
MEDIANS = ("fit_seconds", "test_accuracy")


class TextFormat(OutputFormat):
    """Tables for a terminal; the lines beside them go to stderr."""

    name = "text"
    description = "a table for the terminal"

    def compare(self, digest: ComparisonDigest, out: Output) -> None:
        """Baseline against candidate, one line per configuration and metric, in the
        digest's order (failing rules and regressions first): the medians, the ratio with
        its 95% interval, the p-value (and the Holm-adjusted one under it where a rule
        gates it), the verdict, and the normalized ratio with its verdict."""
        view = Table(title="mnistbench compare", box=box.SIMPLE_HEAD, pad_edge=False)
        numbers = ("baseline", "candidate", "ratio", "95% CI", "p")
        for header in ("config", "metric", *numbers, "verdict", "normalized"):
            view.add_column(
                header,
                justify="right" if header in numbers else "left",
                no_wrap=header not in ("verdict", "normalized"),
            )
        for row in digest.rows:
            color = _VERDICT_COLORS.get(row.verdict)
            verdict = f"[{color}]{row.verdict}[/{color}]" if color else row.verdict
            if row.different_work and row.verdict != DIFFERENT_WORK:  # compared anyway
                verdict += f" [yellow]({DIFFERENT_WORK})[/yellow]"
            if row.failed_rules:
                verdict += f" [red bold]✗ {'; '.join(row.failed_rules)}[/red bold]"
            column = metric(row.metric)
            view.add_row(
                row.config,
                row.metric,
                column.format(row.baseline),
                column.format(row.candidate),
                fmt.spec(row.ratio, ".3f"),
                _interval(row.ratio_low, row.ratio_high),
                _p(row.p_value, row.p_holm),
                verdict,
                " ".join(
                    filter(None, (fmt.spec(row.normalized_ratio, ".3f"), row.normalized_verdict))
                ),
            )
        out.console.print(view)

    def sweep(self, digest: SweepDigest, out: Output) -> None:
        """Per configuration: its runs, and the median with its range of the training time
        and the accuracy (:data:`MEDIANS`), noisy metrics named."""
        shown = [name for name in MEDIANS if name in digest.metrics]
        view = Table(title="medians over repeats", box=box.SIMPLE_HEAD, pad_edge=False)
        view.add_column("config", no_wrap=True)
        view.add_column("runs", no_wrap=True)
        for name in shown:
            view.add_column(f"{metric(name).summary} (min-max)", no_wrap=True)
        view.add_column("noisy")
        for config in digest.configs:
            cells = []
            for name in shown:
                spread, spec = config.metrics[name], metric(name).spec or ".4g"
                cell = fmt.spec(spread.median, spec)
                if config.runs > 1 and not fmt.missing(spread.median):
                    cell += f" ({fmt.spec(spread.min, spec)}-{fmt.spec(spread.max, spec)})"
                cells.append(cell)
            noisy = " ".join(config.noisy)
            view.add_row(
                config.config,
                str(config.runs),
                *cells,
                f"[yellow]{noisy}[/yellow]" if noisy else "-",
            )
        out.console.print(view)
        if any(config.noisy for config in digest.configs):
            out.console.print(
                f"noisy: coefficient of variation above {NOISY_CV:.0%} over the repeats; "
                "see comparison.csv for every metric's spread."
            )

    def ab(self, digest: ABDigest, out: Output) -> None:
        """Head against base, one line per configuration and metric, gated metrics first:
        the ratio with its 95% interval, the paired test's p-value and the verdict."""
        view = Table(
            title=f"mnistbench ab: {digest.head} against {digest.base}",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        numbers = ("base", "head", "ratio", "95% interval", "p", "pairs")
        for header in ("config", "metric", *numbers, "verdict"):
            view.add_column(header, justify="right" if header in numbers else "left")
        colors = {"improved": "green", "regressed": "red"}
        for row in digest.rows:
            column = metric(row.metric)
            color = colors.get(row.verdict)
            verdict = f"[{color}]{row.verdict}[/{color}]" if color else row.verdict
            if row.failed_rules:
                verdict += f" [red bold]✗ {'; '.join(row.failed_rules)}[/red bold]"
            view.add_row(
                row.config,
                row.metric + (" *" if row.gated else ""),
                column.format(row.base),
                column.format(row.head),
                fmt.ratio(row.ratio),
                fmt.interval(row.low, row.high) or "-",
                fmt.spec(row.p_value, ".3f"),
                str(row.pairs),
                verdict,
            )
        out.console.print(view)
        out.console.print(
            f"{digest.pairs} pairs ({digest.failed_pairs} failed), {digest.mode}; stopped: "
            f"{digest.stopped}. Ratios: head / base, the geometric mean over the pairs with "
            f"the 95% interval of the {digest.method}; * gated."
        )


@mnistbench.hookimpl
def mnistbench_register_output_formats(register):
    register(TextFormat())
