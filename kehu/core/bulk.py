"""Bulk loading for the data generators: rows straight into tables, indexes built afterwards.

The generators (``kehu.customers.generate``, ``kehu.sales.generate``,
``kehu.finance.generate`` and ``manage.py generate``) bypass the ORM for speed: rows are
tuples in column order, written with COPY on PostgreSQL and ``executemany`` on SQLite.
Primary keys are assigned by the generator (children need their parents' ids without
reading them back), from ``IdBlocks``; ``sequences_reset`` moves the PostgreSQL identity
sequences past them afterwards. Meant for a database nobody else writes to meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Max

Progress = Callable[[str], None] | None


@dataclass
class GenerateResult:
    """Rows written per table and the time taken (``phases``: seconds per named step)."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class RowWriter:
    """Writes tuples into one table: COPY on PostgreSQL, executemany elsewhere."""

    def __init__(self, model: type[models.Model] | str, columns: Sequence[str]):
        self.table = model if isinstance(model, str) else model._meta.db_table
        self.columns = list(columns)
        self.postgres = connection.vendor == "postgresql"
        qn = connection.ops.quote_name
        cols = ", ".join(qn(c) for c in self.columns)
        marks = ", ".join(["?"] * len(self.columns))
        self.copy_sql = f"COPY {qn(self.table)} ({cols}) FROM STDIN"
        self.qmark_sql = f"INSERT INTO {qn(self.table)} ({cols}) VALUES ({marks})"

    def write(self, rows: list[tuple]) -> int:
        if not rows:
            return 0
        with connection.cursor() as cursor:
            if self.postgres:
                raw = cursor.cursor  # the psycopg cursor under Django's wrapper
                with raw.copy(self.copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                # sqlite3's own executemany: Django's wrapper would rewrite the SQL first.
                sqlite3.Cursor.executemany(cursor.cursor, self.qmark_sql, rows)
        return len(rows)


def next_id(model: type[models.Model]) -> int:
    """The first free primary key of ``model`` (one more than the largest)."""
    return (model._base_manager.aggregate(m=Max("pk"))["m"] or 0) + 1


class IdBlocks:
    """Primary keys handed out per model, starting after the largest in the table.

    Generators that write the same table (sales and finance both write approval requests)
    share one instance so their ids never collide.
    """

    def __init__(self) -> None:
        self.first: dict[type[models.Model], int] = {}
        self.following: dict[type[models.Model], int] = {}

    def start(self, model: type[models.Model]) -> int:
        if model not in self.first:
            self.first[model] = self.following[model] = next_id(model)
        return self.first[model]

    def take(self, model: type[models.Model]) -> int:
        value = self.following.get(model)
        if value is None:
            value = self.start(model)
        self.following[model] = value + 1
        return value

    def models(self) -> list[type[models.Model]]:
        return list(self.first)


def sequences_reset(models_: Iterable[type[models.Model]]) -> None:
    """PostgreSQL identities do not move when ids are given: move them past the new rows."""
    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT follows the largest id inserted
    with connection.cursor() as cursor:
        for model in models_:
            table = model._meta.db_table
            column = str(model._meta.pk.column)
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                f"(SELECT COALESCE(MAX({connection.ops.quote_name(column)}), 1) "
                f"FROM {connection.ops.quote_name(table)}))",
                [table, column],
            )


def tables_analyze(models_: Iterable[type[models.Model]] | None = None) -> None:
    """Fresh planner statistics (all tables on SQLite, the given ones on PostgreSQL)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and models_ is not None:
            for model in models_:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        else:
            cursor.execute("ANALYZE")


class Cells:
    """Python values as each database takes them in bulk (SQLite: text for datetimes)."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"

    def dt(self, value: datetime.datetime | None) -> Any:
        if value is None or self.postgres:
            return value
        return value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(" ")

    def dec(self, value: Decimal) -> Any:
        return value if self.postgres else str(value)

    def day(self, value: datetime.date | None) -> Any:
        return value if self.postgres or value is None else value.isoformat()


# --- deferred indexes -------------------------------------------------------------------
# Loading many rows into indexed tables is slow (every row updates every index, the trigram
# GIN index on PostgreSQL most of all); building an index once over the loaded rows is much
# faster. A large load drops the tables' secondary indexes first and creates them again
# afterwards. Unique indexes (primary keys, numbers, codes) stay: they guard the load.


def secondary_indexes(tables: Sequence[str]) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the non-unique indexes on ``tables``."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "JOIN pg_class t ON t.oid = x.indrelid "
                "WHERE t.relname = ANY(%s) AND pg_table_is_visible(t.oid) "
                "AND NOT x.indisunique ORDER BY t.relname, i.relname",
                [list(tables)],
            )
        else:
            marks = ", ".join(["%s"] * len(tables))
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                f"AND tbl_name IN ({marks}) AND sql NOT LIKE 'CREATE UNIQUE%%' "
                "ORDER BY tbl_name, name",
                list(tables),
            )
        return [(name, sql) for name, sql in cursor.fetchall()]


def indexes_drop(indexes: list[tuple[str, str]]) -> None:
    qn = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        for name, _sql in indexes:
            cursor.execute(f"DROP INDEX IF EXISTS {qn(name)}")


def indexes_create(indexes: list[tuple[str, str]], progress: Progress = None) -> None:
    """Build the dropped indexes over the loaded rows."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Sorting for the index build in memory; this session only.
            cursor.execute("SET maintenance_work_mem = '1GB'")
            # Inside an outer transaction (tests) deferred FK checks are still pending, and
            # CREATE INDEX refuses a table with pending trigger events: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, sql in indexes:
            started = time.monotonic()
            cursor.execute(sql)
            if progress and time.monotonic() - started >= 1:
                progress(f"index {name}: {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def indexes_deferred(
    tables: Sequence[str],
    *,
    enabled: bool = True,
    progress: Progress = None,
    before_drop: Callable[[], None] | None = None,
    after_create: Callable[[], None] | None = None,
    phases: dict[str, float] | None = None,
) -> Iterator[list[tuple[str, str]]]:
    """Drop the non-unique indexes of ``tables`` for the block, build them after it, also
    when it fails (``before_drop``/``after_create``: extra structures such as FTS tables)."""
    if not enabled:
        yield []
        return
    indexes = secondary_indexes(tables)
    indexes_drop(indexes)
    if before_drop:
        before_drop()
    try:
        yield indexes
    finally:
        started = time.monotonic()
        indexes_create(indexes, progress)
        if after_create:
            after_create()
        seconds = time.monotonic() - started
        if phases is not None:
            phases["indexes"] = phases.get("indexes", 0.0) + seconds
        if progress:
            progress(f"{len(indexes)} indexes rebuilt in {seconds:.1f} s")


def foreign_keys_check(tables: Sequence[str]) -> None:
    """Every foreign key of ``tables`` points at a row (SQLite; PostgreSQL checks them)."""
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"PRAGMA foreign_key_check({connection.ops.quote_name(table)})")
            broken = cursor.fetchall()
            if broken:
                raise RuntimeError(
                    f"{table}: {len(broken)} rows with a missing parent: {broken[:5]}"
                )
