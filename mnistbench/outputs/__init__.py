"""How results are printed: output formats, found through the
``mnistbench_register_output_formats`` hook like any plugin's.

``mnistbench compare``, ``report`` and ``ab`` print what they found through the format
``--format NAME`` names. Every format renders the same digests
(:mod:`mnistbench.outputs.digest`): a comparison's, a sweep's headline table, and an A/B
comparison's. mnistbench's own are ``text`` (the terminal's tables,
:mod:`~mnistbench.outputs.text`), ``markdown`` (a pull-request comment and GitHub's step
summary, :mod:`~mnistbench.outputs.markdown`) and ``json``
(:mod:`~mnistbench.outputs.json_output`). Adding one is one module: an
:class:`OutputFormat` and a ``mnistbench_register_output_formats`` implementation that
registers it.

The files reporters write (``pytest-benchmark.json``,
:mod:`~mnistbench.outputs.benchmark_json`) are another hook, ``mnistbench_write_report``.
"""

from __future__ import annotations

import sys
from typing import IO, TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from rich.console import Console

    from mnistbench.outputs.digest import ABDigest, ComparisonDigest, SweepDigest


class Output:
    """Where a format writes: ``stdout`` for its document, ``stderr`` for notes beside it,
    and a :class:`rich.console.Console` on ``stdout`` for the terminal's tables."""

    def __init__(
        self, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None, console=None
    ) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._console = console

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console  # only the text format draws tables

            self._console = Console(file=self.stdout)
        return self._console

    def write(self, text: str) -> None:
        """Write ``text`` to ``stdout`` as it is."""
        self.stdout.write(text)
        self.stdout.flush()

    def note(self, text: str) -> None:
        """One line for the reader beside the document, on ``stderr``."""
        print(text, file=self.stderr)


class OutputFormat:
    """One ``--format``: renders each digest to an :class:`Output`.

    Subclasses set :attr:`name` and :attr:`description` and implement the renderers; a
    digest a format does not render raises NotImplementedError, which the command turns
    into one line.
    """

    #: ``--format NAME``.
    name: ClassVar[str]
    #: One line for ``--help``.
    description: ClassVar[str] = ""

    def compare(self, digest: ComparisonDigest, out: Output) -> None:
        """Render a comparison of two result directories (``mnistbench compare``)."""
        raise NotImplementedError(f"--format {self.name} does not render comparisons")

    def sweep(self, digest: SweepDigest, out: Output) -> None:
        """Render a sweep's headline table (``mnistbench report``)."""
        raise NotImplementedError(f"--format {self.name} does not render sweeps")

    def ab(self, digest: ABDigest, out: Output) -> None:
        """Render an A/B measurement of two versions of the code (``mnistbench ab``)."""
        raise NotImplementedError(f"--format {self.name} does not render A/B comparisons")

    def __repr__(self) -> str:
        return f"<output format {self.name!r}>"
