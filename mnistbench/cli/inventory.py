"""``mnistbench plugins`` and ``mnistbench data``: what is installed, and where MNIST is."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mnistbench import builtins
from mnistbench.backends import native_stderr_to, quiet_backend_logs
from mnistbench.cli.common import console, data_option
from mnistbench.cli.display import print_plugins
from mnistbench.data import describe, resolve_mnist
from mnistbench.runner import NUM_CLASSES


@click.command(name="plugins")
@click.option(
    "--no-params",
    is_flag=True,
    help="Skip building each model to count its parameters (no Keras import).",
)
def list_plugins(no_params: bool) -> None:
    """List the registered architectures, executors, output formats and results stores,
    and the plugins that provide them."""
    plugins = builtins.load_plugins()
    params = {} if no_params else _count_params(plugins)
    print_plugins(console(), plugins, params)


def _count_params(plugins) -> dict[str, str]:
    import numpy as np

    quiet_backend_logs()
    counts = {}
    probe = np.zeros((1, 28, 28), dtype=np.uint8)
    # Keras, its backend and the device probe print start-up lines: noise in a listing.
    with native_stderr_to(os.devnull):
        for name in plugins.architectures:
            try:
                shape = plugins.prepare_data(name, probe, "test").shape[1:]
                model = plugins.build_model(name, shape, NUM_CLASSES)
                counts[name] = f"{model.count_params():,}"
            except Exception as error:  # listing must survive a broken plugin
                counts[name] = f"error: {type(error).__name__}"
    return counts


@click.group()
def data() -> None:
    """Find, fetch and inspect MNIST."""


@data.command()
@data_option
def fetch(data_path: Path | None) -> None:
    """Resolve MNIST (fetching it if needed), validate it and cache it."""
    mnist = resolve_mnist(data_path)
    click.echo(f"MNIST from {mnist.source}: {mnist.origin}")
    click.echo(f"cached at {mnist.cache_path}")


@data.command()
@data_option
def info(data_path: Path | None) -> None:
    """Show where MNIST is and which source it came from, without downloading."""
    for key, value in describe(resolve_mnist(data_path, offline=True)).items():
        click.echo(f"{key}: {value}")
