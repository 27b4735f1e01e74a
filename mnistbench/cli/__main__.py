"""``python -m mnistbench.cli``: the ``mnistbench`` command."""

from mnistbench.cli import cli

cli()
