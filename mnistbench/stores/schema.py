"""What a results store holds: its tables, made from the column registry, how a record's
fields are kept in them, and the ordered schema migrations.

Tables:

- ``meta(key, value)``: ``schema_version``;
- ``sweeps``: one row per sweep (its id, start, output directory, command, git commit and
  dirtiness, versions, CPU, platform, the machine it ran on, and its whole
  ``environment.json``);
- ``runs``: one row per run, keyed by ``(sweep_id, run_id)``, one column per column of
  ``runs.csv`` (:mod:`mnistbench.columns`), typed by the column's kind: text stays text,
  numbers numbers, flags booleans, lists JSON text. A rerun replaces its row.

Columns added to the registry since a store was created are added when it is next opened
(:meth:`mnistbench.stores.Store.open`); other schema changes are the ordered
:data:`MIGRATIONS`. SQLAlchemy is imported inside the functions that build tables: only
the commands that open a store load it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnistbench.columns import BOOL, COLUMNS, FLOAT, INT, LIST, Column
from mnistbench.environment import machine_identity

if TYPE_CHECKING:
    import sqlalchemy as sa

#: The sweeps table's columns besides its id, in order.
SWEEP_FIELDS = (
    "started_at",
    "output_dir",
    "command",
    "git_commit",
    "git_dirty",
    "mnistbench_version",
    "cpu_model",
    "platform",
    "python",
    "backends",
    "packages",
    "plugins",
    "environment",
    "machine",
)
#: The columns of ``sweeps`` that :meth:`mnistbench.stores.Store.read_runs` joins to each
#: run, as it names them: the sweep's fields but the JSON documents.
SWEEP_COLUMNS = (
    "sweep_id",
    "sweep_started_at",
    *(f for f in SWEEP_FIELDS[1:] if f not in ("backends", "packages", "plugins", "environment")),
)


@dataclass(frozen=True)
class Tables:
    """A store's tables as SQLAlchemy Core describes them: today's (``meta``, ``sweeps``,
    ``runs``) and those schema version 1 created (``sweeps_v1``, ``runs_v1``: the runs'
    keys only, the registry's columns being added on opening)."""

    meta: sa.Table
    sweeps: sa.Table
    runs: sa.Table
    sweeps_v1: sa.Table
    runs_v1: sa.Table


def tables() -> Tables:
    """The tables, every column made from :data:`SWEEP_FIELDS` and the column registry."""
    import sqlalchemy as sa

    def keys(*names: str) -> list[sa.Column]:
        return [sa.Column(name, sa.Text, primary_key=True) for name in names]

    def sweep_columns(fields) -> list[sa.Column]:
        return [*keys("sweep_id"), *(sa.Column(name, sa.Text) for name in fields)]

    today, version_1 = sa.MetaData(), sa.MetaData()
    run_columns = [
        sa.Column(column.name, sql_type(column)) for column in COLUMNS if column.name != "run_id"
    ]
    return Tables(
        meta=sa.Table(
            "meta", today, sa.Column("key", sa.Text, primary_key=True), sa.Column("value", sa.Text)
        ),
        sweeps=sa.Table("sweeps", today, *sweep_columns(SWEEP_FIELDS)),
        runs=sa.Table("runs", today, *keys("sweep_id", "run_id"), *run_columns),
        sweeps_v1=sa.Table(
            "sweeps", version_1, *sweep_columns(f for f in SWEEP_FIELDS if f != "machine")
        ),
        runs_v1=sa.Table("runs", version_1, *keys("sweep_id", "run_id")),
    )


# --- cells -----------------------------------------------------------------------------------


def sql_type(column: Column):
    """The SQL type a registry column is kept as, by its kind."""
    import sqlalchemy as sa

    return {
        INT: sa.BigInteger(),
        FLOAT: sa.Double(),
        BOOL: sa.Boolean(create_constraint=False),
        LIST: sa.Text(),
    }.get(column.kind, sa.Text())


def stored_value(column: Column, value: Any) -> Any:
    """A record's field as the store keeps it: None for empty, lists as JSON text."""
    if value is None or value == "" or value == ():
        return None
    if column.kind == LIST:
        return json.dumps(list(value), separators=(",", ":"))
    return value


def cell(value: Any) -> str:
    """A stored value as ``runs.csv`` would hold it, whatever type the store gave it back
    (stores written by older mnistbench versions hold numbers in text and flags in text)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


# --- migrations ------------------------------------------------------------------------------


def _create_tables(tables: Tables, connection) -> None:
    """Schema version 1: the tables. The registry's columns are added on opening, so no
    migration ever names them."""
    for table in (tables.meta, tables.sweeps_v1, tables.runs_v1):
        table.create(connection, checkfirst=True)


def _add_machine(tables: Tables, connection) -> None:
    """Schema version 2: each sweep's machine (:func:`mnistbench.environment.machine_identity`),
    worked out for the sweeps already stored from their ``environment.json``."""
    import sqlalchemy as sa

    present = {c["name"] for c in sa.inspect(connection).get_columns("sweeps")}
    if "machine" not in present:
        connection.exec_driver_sql("ALTER TABLE sweeps ADD COLUMN machine TEXT")
    sweeps = tables.sweeps
    rows = connection.execute(sa.select(sweeps.c.sweep_id, sweeps.c.environment)).all()
    for sweep_id, environment in rows:
        try:
            machine = machine_identity(json.loads(environment or "{}"))
        except (ValueError, TypeError, AttributeError):
            machine = ""
        connection.execute(
            sweeps.update().where(sweeps.c.sweep_id == sweep_id).values(machine=machine)
        )


#: Schema changes in order: ``(version, migrate)``; ``migrate(tables, connection)`` brings a
#: store at the previous version to ``version``. A new change is a new entry at the end;
#: never edit an old one, stores in the wild were made by it.
MIGRATIONS: tuple[tuple[int, Callable], ...] = ((1, _create_tables), (2, _add_machine))
SCHEMA_VERSION = MIGRATIONS[-1][0]
