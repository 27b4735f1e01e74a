"""Sweep files: ``mnistbench run --config sweep.toml`` takes the options of ``run`` from TOML.

A sweep file holds what a command line would. Each key is an option of ``run`` by its
long name with underscores (``batch_size`` for ``--batch-size``, ``jit``, ``backend``,
``all``) or by its parameter name (``jit_compile``, ``backends``); the positional
architectures are ``architectures``. An option that makes a grid takes one value or an
array (``batch_size = [32, 128]``), a flag takes ``true`` or ``false``, and a path is
relative to the file. ``examples/sweep.toml`` shows every key.

The keys and what each accepts are derived from the click command's own parameters
(:func:`file_options`), and each value is converted by its option's own type and
callback from the text the command line would hold, so the file and the command line
accept exactly the same values. The values reach the command as click's
``default_map``: they replace the defaults only, and an option typed on the command
line (or set by its environment variable) wins over the file's.

Nothing here imports Keras; ``tomllib`` is imported when a file is read.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from mnistbench import layout
from mnistbench.atomic import atomic_writer
from mnistbench.environment import record_sweep_file
from mnistbench.errors import ConfigError

#: Parameters of ``run`` a sweep file cannot set: the file itself and what to do with it.
NOT_IN_FILE = frozenset({"config", "resume", "dry_run"})


class GridOption(click.Option):
    """An option whose comma-separated values make a grid (``--batch-size 32,128``).

    In a sweep file it takes one value or an array of them, each an ``item_type``
    (``int`` or ``str``); the array is joined with commas into the command line's text.
    """

    def __init__(self, *args: Any, item_type: type = str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item_type = item_type


class _WrongType(Exception):
    """A TOML value of a type the option does not take."""


def _shown(value: Any) -> str:
    """A TOML value as the file spells it (near enough): ``"big"``, ``true``, ``[1, 2]``."""
    return json.dumps(value, default=str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class FileOption:
    """One key a sweep file may hold: the parameter of ``run`` it sets, and what it takes."""

    key: str
    param: click.Parameter

    @property
    def expected(self) -> str:
        """What the key takes, for error messages: ``an integer or a list of integers``."""
        param = self.param
        if isinstance(param, GridOption):
            if param.item_type is int:
                return "an integer or a list of integers"
            return "a string or a list of strings"
        if isinstance(param, click.Argument):
            return "a name or a list of names"
        if isinstance(param, click.Option) and param.is_flag:
            return "true or false"
        kind = param.type
        if isinstance(kind, click.Path):
            return "a path (a string)"
        if hasattr(kind, "relative_to"):
            return "a path or a URL (a string)"
        if isinstance(kind, click.types.IntParamType):
            return "an integer"
        if isinstance(kind, click.types.FloatParamType):
            return "a number"
        if isinstance(kind, click.Choice):
            return "one of " + ", ".join(_shown(choice) for choice in kind.choices)
        return "a string"

    def command_line_value(self, value: Any, base: Path) -> Any:
        """``value`` from the file as the command line would give it: the text of an option
        (grids joined with commas, paths made relative to ``base``), a bool for a flag, a
        tuple of names for the architectures. Raises :class:`_WrongType`."""
        param = self.param
        if isinstance(param, GridOption):
            items = value if isinstance(value, list) else [value]
            matches = _is_int if param.item_type is int else (lambda v: isinstance(v, str))
            if not items or not all(matches(item) for item in items):
                raise _WrongType
            return ",".join(str(item) for item in items)
        if isinstance(param, click.Argument):
            names = value if isinstance(value, list) else [value]
            if not names or not all(isinstance(name, str) for name in names):
                raise _WrongType
            return tuple(names)
        if isinstance(param, click.Option) and param.is_flag:
            if not isinstance(value, bool):
                raise _WrongType
            return value
        kind = param.type
        if isinstance(kind, click.types.IntParamType):
            if not _is_int(value):
                raise _WrongType
            return str(value)
        if isinstance(kind, click.types.FloatParamType):
            if not _is_number(value):
                raise _WrongType
            return str(value)
        if not isinstance(value, str):
            raise _WrongType
        if isinstance(kind, click.Path):
            return str(base / Path(value).expanduser())
        if hasattr(kind, "relative_to"):  # a path relative to the file, or a URL as it is
            return kind.relative_to(value, base)
        return value


def file_options(command: click.Command) -> dict[str, FileOption]:
    """Every key a sweep file for ``command`` may hold, with the parameter each sets.

    An option's keys are its long names with underscores (``--batch-size``:
    ``batch_size``) and its parameter name (``--jit``: ``jit`` and ``jit_compile``); an
    argument's key is its name. Parameters in :data:`NOT_IN_FILE` have none.
    """
    options: dict[str, FileOption] = {}
    for param in command.params:
        if param.name is None or param.name in NOT_IN_FILE:
            continue
        long_names = [
            name[2:].replace("-", "_")
            for name in getattr(param, "opts", [])
            if name.startswith("--")
        ]
        for key in dict.fromkeys([*long_names, param.name]):
            options[key] = FileOption(key, param)
    return options


def canonical_keys(command: click.Command) -> list[str]:
    """One key per parameter a sweep file may set, as the docs name it: the first long name."""
    keys: dict[str, str] = {}
    for key, option in file_options(command).items():
        keys.setdefault(option.param.name, key)
    return sorted(keys.values())


@dataclass(frozen=True)
class SweepFile:
    """A read and checked sweep file.

    ``defaults`` maps each parameter the file sets to its value as the command line would
    give it (the text of an option, a flag's bool, a tuple of architectures): click's
    ``default_map`` for the command.
    """

    path: Path
    text: str
    defaults: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, str]:
        """The file's record in ``environment.json``: its absolute path and its content."""
        return {"path": str(self.path.resolve()), "content": self.text}


def read_sweep_file(
    path: Path, command: click.Command, ctx: click.Context | None = None
) -> SweepFile:
    """Read the sweep file at ``path`` for ``command`` (``mnistbench run``) and check it.

    Every value goes through its option's own conversion and callback, as a value typed
    on the command line would. Raises :class:`ConfigError` with one line naming the
    file, and the key where one is at fault: a missing or unreadable file, a file that
    is not TOML (with the parser's line and column), an unknown key, a value of the
    wrong type or out of range, one option given under two keys.
    """
    import tomllib

    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not TOML: the file is not UTF-8 text") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not TOML: {error}") from None
    options = file_options(command)
    ctx = ctx or click.Context(command)
    base = path.parent
    defaults: dict[str, Any] = {}
    keys_of: dict[str, str] = {}
    for key, value in table.items():
        option = options.get(key)
        if option is None:
            raise ConfigError(f"{path}: {_unknown(key, command)}")
        name = option.param.name
        if name in keys_of:
            raise ConfigError(f"{path}: {key}: the same option as {keys_of[name]}; give one")
        keys_of[name] = key
        try:
            given = option.command_line_value(value, base)
        except _WrongType:
            raise ConfigError(
                f"{path}: {key}: expected {option.expected}, got {_shown(value)}"
            ) from None
        try:
            option.param.process_value(ctx, given)
        except click.BadParameter as error:
            raise ConfigError(f"{path}: {key}: {error.message}") from None
        defaults[name] = given
    if defaults.get("run_all") and defaults.get("architectures"):
        raise ConfigError(
            f"{path}: {keys_of['architectures']} and {keys_of['run_all']}: give one, not both"
        )
    return SweepFile(path, text, defaults)


def _unknown(key: str, command: click.Command) -> str:
    """``unknown key "batchsize" (known: ...); did you mean "batch_size"?``"""
    known = canonical_keys(command)
    hint = difflib.get_close_matches(key, list(file_options(command)), n=1)
    suggestion = f"; did you mean {_shown(hint[0])}?" if hint else ""
    return f"unknown key {_shown(key)} (known: {', '.join(known)}){suggestion}"


def load_sweep_file(
    ctx: click.Context, param: click.Parameter, value: Path | None
) -> SweepFile | None:
    """The callback of ``--config`` (an eager option): read the file and make its values
    the command's defaults (``ctx.default_map``), before the other options are processed."""
    if value is None:
        return None
    sweep_file = read_sweep_file(value, ctx.command, ctx)
    ctx.default_map = {**(ctx.default_map or {}), **sweep_file.defaults}
    return sweep_file


def choose_architectures(
    ctx: click.Context, architectures: tuple[str, ...], run_all: bool
) -> tuple[tuple[str, ...], bool]:
    """The architectures and ``--all`` to plan: either typed on the command line replaces
    both of the sweep file's (``dnn`` on the command line overrides the file's ``all =
    true``, and ``--all`` the file's architectures)."""
    source = ctx.get_parameter_source
    typed = ParameterSource.COMMANDLINE
    from_file = ParameterSource.DEFAULT_MAP
    if source("architectures") is typed and source("run_all") is from_file:
        return architectures, False
    if source("run_all") is typed and source("architectures") is from_file:
        return (), run_all
    return architectures, run_all


def save_sweep_file(output_dir: Path, sweep_file: SweepFile | None) -> Path | None:
    """Copy the sweep file of a new sweep into ``output_dir`` as ``sweep.toml`` and record
    its path and content in ``environment.json``; returns the copy's path.

    With None (a sweep planned without a file) any earlier record in the directory is
    dropped, so that a directory reused with ``--force`` does not claim a file it no
    longer came from.
    """
    if sweep_file is None:
        record_sweep_file(output_dir, None)
        return None
    copy = layout.SWEEP_TOML.of(output_dir)
    with atomic_writer(copy, "w") as handle:
        handle.write(sweep_file.text)
    record_sweep_file(output_dir, sweep_file.record())
    return copy
