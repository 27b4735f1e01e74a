"""What the commands share: the consoles, the error handling, the shared options.

The CLI is thin: each command parses and checks its options, calls the library and
prints. An error a user can cause is a :class:`~mnistbench.errors.MnistbenchError`,
printed as one line with exit code 2 (``--debug`` keeps the traceback).
"""

from __future__ import annotations

import logging
import sys
import traceback
from functools import cache
from pathlib import Path
from typing import NoReturn

import click

from mnistbench import builtins
from mnistbench.errors import MnistbenchError
from mnistbench.plugins import Plugins
from mnistbench.stores import Store, open_store
from mnistbench.stores import resolve as resolve_store

EXIT_USAGE = 2
EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130

#: Where sweeps record their runs unless --db, $MNISTBENCH_DB or --no-db says otherwise;
#: beside the default output directories, results/<timestamp>.
DEFAULT_DB = str(Path("results") / "mnistbench.sqlite")


def console(stderr: bool = False):
    """A rich console on stdout (or stderr)."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped or captured output has no width; rich would assume 80 columns and cut
    # the tables' run names. A log file can be as wide as the table needs.
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def setup_logging(debug: bool) -> None:
    """mnistbench's warnings through rich, on stderr; debug messages with ``--debug``."""
    from rich.logging import RichHandler

    handler = RichHandler(
        console=console(stderr=True), show_time=False, show_path=False, markup=False
    )
    logger = logging.getLogger("mnistbench")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False


def usage_error(error: click.UsageError) -> NoReturn:
    """A command line click cannot parse, in one line (click's own display adds the usage
    and a hint above it), naming the help that says more; exits with its code (2)."""
    where = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
    message = " ".join(error.format_message().split())  # a choice list comes one per line
    click.echo(f"Error: {message}{where}", err=True)
    sys.exit(error.exit_code)


class MnistbenchGroup(click.Group):
    """Turns user errors into one line and exit code 2; ``--debug`` keeps the traceback.

    The errors of mnistbench's own checks (:class:`MnistbenchError`) and click's usage
    errors alike: a subcommand's options are parsed inside :meth:`invoke`, the group's own
    in :meth:`parse_args`. A group called without a command still shows its help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            usage_error(error)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as error:
            usage_error(error)
        except MnistbenchError as error:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            click.echo(f"Error: {error}", err=True)
            ctx.exit(EXIT_USAGE)


@cache
def declared() -> Plugins:
    """The plugins installed when the command line is built: what declares the options that
    executors add to ``run`` and the choices of ``--format``. Loaded quietly, once; each
    command loads the plugins again when it runs (:func:`mnistbench.builtins.load_plugins`),
    honouring the plugin variables, and reports their failures then."""
    logger = logging.getLogger("mnistbench")
    disabled, logger.disabled = logger.disabled, True
    try:
        return builtins.load_plugins(strict=False)
    finally:
        logger.disabled = disabled


def make_dir(path: Path) -> None:
    """Create ``path`` (and its parents) for a command's output; one line if it cannot."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise MnistbenchError(f"cannot write to {path}: {error.strerror or error}") from None


def typed(ctx: click.Context, name: str) -> bool:
    """Whether the option ``name`` was typed on the command line."""
    return ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE


def given(ctx: click.Context) -> set[str]:
    """The parameters typed or set by their environment variable, not defaults (a sweep
    file's values are defaults)."""
    defaults = (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)
    return {name for name in ctx.params if ctx.get_parameter_source(name) not in defaults}


def flag(name: str) -> str:
    """How a parameter is spelled on the command line: ``ARCH``, ``--all``, ``--batch-size``."""
    return {"architectures": "ARCH", "run_all": "--all"}.get(name, f"--{name.replace('_', '-')}")


data_option = click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    default=None,
    envvar="MNISTBENCH_DATA",
    show_envvar=True,
    help="MNIST as mnist.npz or a directory of the four IDX files.",
)


class StoreLocation(click.ParamType):
    """A results store: a path or a URL (:func:`mnistbench.stores.resolve`), kept as the
    text given; a sweep file's relative path is relative to the file (:meth:`relative_to`)."""

    name = "URL|PATH"

    def convert(self, value, param, ctx) -> str:
        text = str(value).strip()
        if not text:
            self.fail("give a path or a URL such as postgresql://USER@HOST/DBNAME", param, ctx)
        return text

    def relative_to(self, value: str, base: Path) -> str:
        return resolve_store(value, base)


db_option = click.option(
    "--db",
    "db_path",
    type=StoreLocation(),
    default=DEFAULT_DB,
    show_default=True,
    envvar="MNISTBENCH_DB",
    show_envvar=True,
    help="The results store that gathers every sweep's runs: a path or sqlite:///PATH "
    "(SQLite), or postgresql://USER@HOST/DBNAME (a history a team shares).",
)


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds after which a run's worker is stopped and the run recorded as failed.",
)
force_option = click.option(
    "--force", is_flag=True, help="Write into a non-empty output directory."
)
no_db_option = click.option("--no-db", is_flag=True, help="Record the runs in no results store.")


def output_option(default: str):
    """``--output/-o DIR``: where a command writes its directory, ``default`` said in help."""
    return click.option(
        "--output",
        "-o",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Output directory [default: {default}].",
    )


def results_store(location: str, plugins: Plugins | None = None, *, check: bool = True) -> Store:
    """The store ``--db`` names, through the registered stores; with ``check``, refused
    now (one line, exit 2) when a sweep could not write it: an unknown scheme, a server
    that does not answer or refuses the login, a file that is no results database."""
    store = open_store(location, (plugins or declared()).stores)
    if check:
        store.check()
    return store


def format_option(what: str):
    """``--format NAME``: one of the output formats the plugins register."""
    formats = declared().formats
    described = "; ".join(
        f"{name}: {registered.value.description}" for name, registered in sorted(formats.items())
    )
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(sorted(formats)),
        default="text",
        show_default=True,
        help=f"How to print {what} ({described}).",
    )


def warn(message: str, rich_console=None) -> None:
    """One warning line on stderr."""
    if rich_console is None:
        click.echo(f"warning: {message}", err=True)
    else:
        rich_console.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)
