"""The command line: parses, validates, shows progress, and calls the library.

One module per group of commands: :mod:`~mnistbench.cli.run`, :mod:`~mnistbench.cli.ab`,
:mod:`~mnistbench.cli.results` (report, compare, merge, export),
:mod:`~mnistbench.cli.history` (history, db import, db copy),
:mod:`~mnistbench.cli.inventory` (plugins, data); what they share is
:mod:`~mnistbench.cli.common`. Nothing here imports Keras or a backend: ``mnistbench
--help`` must answer at once, and each run's worker imports only the backend it uses.
"""

from __future__ import annotations

import click

from mnistbench import __version__
from mnistbench.cli import ab, history, inventory, results, run
from mnistbench.cli.common import MnistbenchGroup, setup_logging


@click.group(cls=MnistbenchGroup)
@click.version_option(__version__, prog_name="mnistbench")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Benchmark deep-learning architectures on MNIST with Keras 3.

    Every architecture comes from a plugin; `mnistbench plugins` lists them.
    """
    ctx.obj = {"debug": debug}
    setup_logging(debug)


for command in (
    run.run,
    ab.ab_command,
    results.report,
    results.compare,
    results.merge,
    results.export,
    history.history,
    history.database,
    inventory.list_plugins,
    inventory.data,
):
    cli.add_command(command)
