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
import itertools
import os
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.db import connection, models, transaction
from django.db.models import Max
from django.db.utils import DatabaseError

Progress = Callable[[str], None] | None


@dataclass
class GenerateResult:
    """Rows written per table and the time taken (``phases``: seconds per named step,
    ``cpu``: this process's CPU seconds for those that measure it)."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of this process
    server: dict[str, float] = field(default_factory=dict)  # PostgreSQL's, when measurable
    indexes: dict[str, float] = field(default_factory=dict)  # index build seconds per table

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


# SQLite: rows per INSERT statement. One statement per row costs its per-statement work
# for every row (on an AUTOINCREMENT table an update of sqlite_sequence too): about three
# times the work of a row inside a multi-row VALUES list (measured: 3.2 against 1.1 µs per
# row of eight columns).
SQLITE_ROWS_PER_INSERT = 100
SQLITE_PARAMS_PER_INSERT = 999  # SQLite's historic default limit of bound parameters


class RowWriter:
    """Writes tuples into one table: COPY on PostgreSQL, multi-row INSERTs elsewhere."""

    def __init__(
        self,
        model: type[models.Model] | str,
        columns: Sequence[str],
        references: References | None = None,
    ):
        self.table = model if isinstance(model, str) else model._meta.db_table
        self.model = None if isinstance(model, str) else model
        self.columns = list(columns)
        self.references = references
        self.postgres = connection.vendor == "postgresql"
        qn = connection.ops.quote_name
        cols = ", ".join(qn(c) for c in self.columns)
        self.copy_sql = f"COPY {qn(self.table)} ({cols}) FROM STDIN"
        self.insert_sql = f"INSERT INTO {qn(self.table)} ({cols}) VALUES "
        self.row_marks = "(" + ", ".join(["?"] * len(self.columns)) + ")"
        self.per_insert = max(
            1, min(SQLITE_ROWS_PER_INSERT, SQLITE_PARAMS_PER_INSERT // max(1, len(self.columns)))
        )

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
                self._insert(cursor.cursor, iter(rows), len(rows))
        return len(rows)

    def _insert(self, raw: Any, rows: Iterator[Sequence[Any]], count: int) -> None:
        """``count`` rows into the table, ``per_insert`` rows per statement (sqlite3's own
        ``executemany``: Django's wrapper would rewrite the SQL first)."""
        per, width = self.per_insert, len(self.columns)
        flat = itertools.chain.from_iterable(rows)
        full, rest = divmod(count, per)
        if full:
            sql = self.insert_sql + ", ".join([self.row_marks] * per)
            chunks = zip(*[flat] * (per * width), strict=False)
            sqlite3.Cursor.executemany(raw, sql, itertools.islice(chunks, full))
        if rest:  # the last rows, from where the chunks stopped
            sql = self.insert_sql + ", ".join([self.row_marks] * rest)
            sqlite3.Cursor.execute(raw, sql, tuple(itertools.islice(flat, rest * width)))

    def write_columns(
        self, columns: Sequence[Any], count: int, sink: CopySink | None = None
    ) -> int:
        """Write ``count`` rows given column by column, each a list of cells from ``Vector``
        (or one value for every row). PostgreSQL: one COPY text block, sent by ``sink``'s
        thread when given; SQLite: ``executemany`` over the zipped columns."""
        if not count:
            return 0
        if len(columns) != len(self.columns):
            raise ValueError(f"{self.table}: {len(columns)} columns for {len(self.columns)}")
        if self.references is not None:
            self.references.written(self, columns)
        cells = [c if isinstance(c, list) else itertools.repeat(c, count) for c in columns]
        if self.postgres:
            text = "\n".join(map("\t".join, zip(*cells, strict=False))) + "\n"
            if sink is not None:
                sink.put(self.copy_sql, text)
            else:
                copy_text(self.copy_sql, text)
        else:
            with connection.cursor() as cursor:
                self._insert(cursor.cursor, zip(*cells, strict=False), count)
        return count


def copy_text(sql: str, text: str) -> None:
    """One COPY of a block of rows in PostgreSQL's text format."""
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(text)


class CopySink:
    """COPY blocks sent by a thread of their own, so the server loads one batch while Python
    prepares the next (2 cores: the server is a separate process). At most ``depth`` blocks
    wait; ``drain`` waits for all and re-raises the thread's error. PostgreSQL only: the
    thread uses the same connection, so nothing else may query it until ``drain``."""

    def __init__(self, depth: int = 2) -> None:
        self.raw = connection.connection
        self.jobs: queue.Queue[tuple[str, str] | None] = queue.Queue(maxsize=depth * 16)
        self.error: BaseException | None = None
        self.busy = 0.0  # seconds the thread spent in COPY
        self.busy_by: dict[str, float] = {}  # the same per table
        self.thread = threading.Thread(target=self._run, name="copy-sink", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                if job is None:
                    return
                if self.error is None:
                    started = time.monotonic()
                    with self.raw.cursor() as cursor, cursor.copy(job[0]) as copy:
                        copy.write(job[1])
                    seconds = time.monotonic() - started
                    self.busy += seconds
                    table = job[0].split(" ", 2)[1].strip('"')  # COPY "table" (…)
                    self.busy_by[table] = self.busy_by.get(table, 0.0) + seconds
            except BaseException as exc:  # noqa: BLE001 - handed to the caller in drain
                self.error = exc
            finally:
                self.jobs.task_done()

    def put(self, sql: str, text: str) -> None:
        if self.error is not None:
            self.drain()
        self.jobs.put((sql, text))

    def drain(self) -> None:
        self.jobs.join()
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join()


DAY = 86_400  # seconds


def within(counts: np.ndarray) -> np.ndarray:
    """0, 1, … inside each group of ``np.repeat(x, counts)``."""
    starts = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)


def group_cummax(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running maximum restarting at each group (``groups`` sorted, values non-negative)."""
    span = int(values.max()) + 1 if len(values) else 1
    shifted = values + groups.astype(np.int64) * span
    return np.maximum.accumulate(shifted) - groups.astype(np.int64) * span


def group_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sum restarting at each group (``groups`` sorted)."""
    if not len(values):
        return values.copy()
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    counts = np.diff(np.r_[starts, len(values)])
    before = np.repeat(total[starts] - values[starts], counts)
    return total - before


@contextlib.contextmanager
def copy_sink() -> Iterator[CopySink | None]:
    """A ``CopySink`` on PostgreSQL (closed after the block), None elsewhere."""
    if connection.vendor != "postgresql":
        yield None
        return
    sink = CopySink()
    try:
        yield sink
    finally:
        sink.close()


class IntCells(list):
    """The cells of an integer column, with the numbers they came from (``References``
    checks foreign keys on those)."""

    __slots__ = ("values", "null")
    values: np.ndarray
    null: np.ndarray | None


class Vector:
    """numpy columns as cells for ``RowWriter.write_columns``: Python values for SQLite's
    executemany, text for PostgreSQL's COPY (``NULL`` as ``\\N``). Times are int64 seconds
    since the epoch (UTC), days int64 days since the epoch, money int64 cents."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.null: Any = "\\N" if self.postgres else None

    def ints(self, values: np.ndarray, null: np.ndarray | None = None) -> list:
        cells = IntCells(map(str, values.tolist()) if self.postgres else values.tolist())
        cells.values, cells.null = values, null
        return self._nulls(cells, null)

    def money(self, cents: np.ndarray, null: np.ndarray | None = None) -> list:
        # PostgreSQL: exact, numeric reads the exponent. SQLite keeps decimals as REAL
        # (NUMERIC affinity), as it does the text "12.34".
        cells = [f"{c}e-2" for c in cents.tolist()] if self.postgres else (cents / 100).tolist()
        return self._nulls(cells, null)

    def times(self, seconds: np.ndarray, null: np.ndarray | None = None) -> list:
        text = np.datetime_as_string(seconds.astype("datetime64[s]"))
        width = text.dtype.itemsize // 4
        text.view(np.uint32).reshape(-1, width)[:, 10] = ord(" ")  # as Django writes them
        return self._nulls(text.astype("U19").tolist(), null)

    def days(self, days: np.ndarray, null: np.ndarray | None = None) -> list:
        return self._nulls(np.datetime_as_string(days.astype("datetime64[D]")).tolist(), null)

    def texts(self, values: np.ndarray | list, null: np.ndarray | None = None) -> list:
        """Strings (an object array, often picked from a table of few values)."""
        cells = values.tolist() if isinstance(values, np.ndarray) else list(values)
        if self.postgres:
            cells = [copy_escape(c) for c in cells]
        return self._nulls(cells, null)

    def bools(self, values: np.ndarray) -> list:
        if self.postgres:
            return np.where(values, "t", "f").tolist()
        return values.tolist()

    def text(self, value: str | None) -> Any:
        """One value for every row."""
        if value is None:
            return self.null
        return copy_escape(value) if self.postgres else value

    def value(self, value: int | None) -> Any:
        if value is None:
            return self.null
        return str(value) if self.postgres else value

    def _nulls(self, cells: list, null: np.ndarray | None) -> list:
        if null is not None:
            for index in np.flatnonzero(null).tolist():
                cells[index] = self.null
        return cells


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(value: str) -> str:
    """A string as COPY's text format reads it (backslash, tab and line breaks escaped)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


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


class References:
    """The foreign keys of the rows a load writes, checked in numpy as they are written.

    Writers given this object (``RowWriter(..., references=...)``) report each block of
    rows: its primary keys (the id ranges written, per table) and every foreign-key column,
    which must come as ``Vector.ints`` cells (the numbers) or one value for all rows. A
    value must be the key of a row this load wrote before it, or of a row there before the
    load: tables of at most ``SMALL`` rows (users, products, dictionaries) are read once
    up front; other values (a row written before its parent, a customer that was there) are
    kept and looked up in the database once, at ``finish``. Nothing is checked twice; the
    generator assigns every key, so the ranges answer almost every value.
    """

    SMALL = 100_000

    def __init__(self, models_: Iterable[type[models.Model]]) -> None:
        self.ranges: dict[str, list[tuple[int, int]]] = {}  # table → [first, last] written
        self.loose: dict[str, list[np.ndarray]] = {}  # table → keys not in one run
        self.bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # ranges as arrays
        self.there: dict[str, np.ndarray | None] = {}  # small tables' keys before the load
        self.pending: dict[tuple[str, str, str], list[np.ndarray]] = {}
        self.values = 0  # values checked
        self.keys: dict[str, list[tuple[str, str, str]]] = {}  # table → (column, target, key)
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            for model in models_:
                keys = []
                for field in model._meta.concrete_fields:
                    if not field.is_relation:
                        continue
                    target = field.target_field  # type: ignore[attr-defined]
                    table, column = target.model._meta.db_table, str(target.column)
                    keys.append((str(field.column), table, column))
                    if table in self.there:
                        continue
                    self.there[table] = None
                    if not target.primary_key:
                        continue  # looked up at the end
                    cursor.execute(f"SELECT COUNT(*) FROM {qn(table)}")
                    if cursor.fetchone()[0] <= self.SMALL:
                        cursor.execute(f"SELECT {qn(column)} FROM {qn(table)}")
                        self.there[table] = np.sort(
                            np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
                        )
                self.keys[model._meta.db_table] = keys

    def written(self, writer: RowWriter, columns: Sequence[Any]) -> None:
        """A block of ``writer``'s rows (``columns`` as given to ``write_columns``)."""
        model = writer.model
        if model is None or model._meta.db_table not in self.keys:
            raise ValueError(f"{writer.table}: not a table of this load's references")
        table = writer.table
        by_name = dict(zip(writer.columns, columns, strict=True))
        for column, target, key in self.keys[table]:
            if column in by_name:
                self._check(table, column, target, key, by_name[column])
        pk = str(model._meta.pk.column)
        if pk not in by_name or not isinstance(by_name[pk], IntCells):
            raise TypeError(f"{table}.{pk}: keys must be given as Vector.ints")
        self._wrote(table, by_name[pk].values)

    def _wrote(self, table: str, ids: np.ndarray) -> None:
        if not len(ids):
            return
        first, last = int(ids[0]), int(ids[-1])
        if last - first + 1 == len(ids) and (len(ids) == 1 or bool((np.diff(ids) == 1).all())):
            runs = self.ranges.setdefault(table, [])
            if runs and runs[-1][1] + 1 == first:
                runs[-1] = (runs[-1][0], last)
            else:
                runs.append((first, last))
        else:
            self.loose.setdefault(table, []).append(np.unique(ids))
        self.bounds.pop(table, None)

    def _known(self, table: str, values: np.ndarray) -> np.ndarray:
        """Whether each value is a key written by this load or there before it."""
        if table not in self.bounds:
            runs = sorted(self.ranges.get(table, []))
            self.bounds[table] = (
                np.array([r[0] for r in runs], dtype=np.int64),
                np.array([r[1] for r in runs], dtype=np.int64),
            )
        starts, ends = self.bounds[table]
        at = np.searchsorted(starts, values, side="right") - 1
        known = (at >= 0) & (values <= ends[np.maximum(at, 0)]) if len(starts) else None
        if known is None:
            known = np.zeros(len(values), dtype=bool)
        for keys in self.loose.get(table, []):
            known |= np.isin(values, keys)
        there = self.there.get(table)
        if there is not None and len(there):
            spot = np.minimum(np.searchsorted(there, values), len(there) - 1)
            known |= there[spot] == values
        return known

    def _check(self, table: str, column: str, target: str, key: str, cells: Any) -> None:
        if isinstance(cells, IntCells):
            values = cells.values if cells.null is None else cells.values[~cells.null]
        elif isinstance(cells, list):
            raise TypeError(f"{table}.{column}: a foreign key must be given as Vector.ints")
        elif cells is None or cells == "\\N":
            return  # NULL in every row
        else:
            values = np.array([int(cells)], dtype=np.int64)
        values = np.asarray(values, dtype=np.int64)
        self.values += len(values)
        unknown = values[~self._known(target, values)]
        if len(unknown):
            self.pending.setdefault((f"{table}.{column}", target, key), []).append(unknown)

    def finish(self) -> int:
        """Check the values kept for the end; returns how many values were checked."""
        qn = connection.ops.quote_name
        for (label, target, key), parts in self.pending.items():
            values = np.unique(np.concatenate(parts))
            values = values[~self._known(target, values)]
            found: set[int] = set()
            with connection.cursor() as cursor:
                for start in range(0, len(values), 10_000):
                    chunk = values[start : start + 10_000].tolist()
                    marks = ", ".join(["%s"] * len(chunk))
                    cursor.execute(
                        f"SELECT {qn(key)} FROM {qn(target)} WHERE {qn(key)} IN ({marks})", chunk
                    )
                    found.update(row[0] for row in cursor.fetchall())
            missing = [v for v in values.tolist() if v not in found]
            if missing:
                raise RuntimeError(f"{label}: {missing[0]} points at nothing")
        self.pending = {}
        return self.values


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
    """Fresh planner statistics (all tables on SQLite, the given ones on PostgreSQL).

    PostgreSQL outside a transaction: VACUUM too. Freshly loaded pages are not yet marked
    all-visible, so every index-only scan (the lists' bounded counts) would still read the
    table, and autovacuum would do it later, under the first users."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and models_ is not None:
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            for model in models_:
                cursor.execute(f"{command} {connection.ops.quote_name(model._meta.db_table)}")
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


INDEX_WORKERS = 2  # PostgreSQL connections building indexes at once (this machine: 2 cores)


def _index_table(sql: str) -> str:
    """The table a CREATE INDEX statement indexes (either database's spelling)."""
    match = re.search(r"\sON\s+(?:ONLY\s+)?(?:\w+\.)?\"?(\w+)\"?", sql)
    return match[1] if match else "?"


def indexes_create(
    indexes: list[tuple[str, str]],
    progress: Progress = None,
    *,
    timings: dict[str, float] | None = None,
    workers: int | None = None,
) -> float | None:
    """Build the dropped indexes over the loaded rows; ``timings`` gets the seconds per table.

    PostgreSQL, outside a transaction: ``workers`` connections of their own build indexes
    of different tables at once, the largest first (Python is idle meanwhile, and a GIN
    index is built by one process only). SQLite: one connection, sorting with a helper
    thread. Returns the PostgreSQL backends' CPU seconds when measurable, else None."""
    timings = {} if timings is None else timings
    if connection.vendor == "postgresql":
        workers = INDEX_WORKERS if workers is None else workers
        if workers > 1 and not connection.in_atomic_block and len(indexes) > 1:
            return _indexes_create_parallel(indexes, progress, timings, workers)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Sorting for the index build in memory; this session only.
            cursor.execute("SET maintenance_work_mem = '1GB'")
            # Inside an outer transaction (tests) deferred FK checks are still pending, and
            # CREATE INDEX refuses a table with pending trigger events: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        else:
            cursor.execute("PRAGMA threads")
            threads = cursor.fetchone()[0]
            cursor.execute("PRAGMA threads = 2")  # a second thread sorts (0 when not built in)
        before = server_cpu()
        try:
            for name, sql in indexes:
                started = time.monotonic()
                cursor.execute(sql)
                _timed(timings, name, sql, time.monotonic() - started, progress)
        finally:
            if connection.vendor == "sqlite":
                cursor.execute(f"PRAGMA threads = {int(threads)}")
        after = server_cpu()
    return None if before is None or after is None else after - before


def _timed(
    timings: dict[str, float], name: str, sql: str, seconds: float, progress: Progress
) -> None:
    table = _index_table(sql)
    timings[table] = timings.get(table, 0.0) + seconds
    if progress and seconds >= 1:
        progress(f"index {name}: {seconds:.1f} s")


def _indexes_create_parallel(
    indexes: list[tuple[str, str]], progress: Progress, timings: dict[str, float], workers: int
) -> float | None:
    """``indexes_create`` on ``workers`` connections of their own (threads)."""
    from django.db import connections

    tables = sorted({_index_table(sql) for _name, sql in indexes})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_table_is_visible(c.oid)",
            [tables],
        )
        sizes = dict(cursor.fetchall())

    def cost(item: tuple[str, str]) -> float:
        # A GIN index (trigram, bigram) takes several times a B-tree's time per row.
        weight = 6 if " USING gin " in item[1] else 1
        return sizes.get(_index_table(item[1]), 0) * weight

    jobs: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    for item in sorted(indexes, key=cost, reverse=True):  # the longest first
        jobs.put(item)
    lock = threading.Lock()
    errors: list[BaseException] = []
    spent: list[float] = []

    def work() -> None:
        own = connections.create_connection(connection.alias)
        try:
            with own.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '1GB'")
                # The connections share the cores: no parallel workers of their own.
                cursor.execute("SET max_parallel_maintenance_workers = 0")
                before = server_cpu(own)
                while not errors:
                    try:
                        name, sql = jobs.get_nowait()
                    except queue.Empty:
                        break
                    started = time.monotonic()
                    cursor.execute(sql)
                    with lock:
                        _timed(timings, name, sql, time.monotonic() - started, progress)
                after = server_cpu(own)
                if before is not None and after is not None:
                    with lock:
                        spent.append(after - before)
        except BaseException as exc:  # noqa: BLE001 - raised by the caller
            errors.append(exc)
        finally:
            own.close()

    threads = [
        threading.Thread(target=work, name=f"index-{i}", daemon=True) for i in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sum(spent) if len(spent) == workers else None


def server_cpu(conn: Any = None) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend of ``conn`` (default: this
    thread's connection) when the server runs on this machine (read from /proc), else
    None. SQLite's work is in this process's own CPU time."""
    conn = conn or connection
    if conn.vendor != "postgresql":
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"postgres" not in f.read():
                return None  # another server's process number
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def indexes_deferred(
    tables: Sequence[str],
    *,
    enabled: bool = True,
    progress: Progress = None,
    before_drop: Callable[[], None] | None = None,
    after_create: Callable[[], None] | None = None,
    phases: dict[str, float] | None = None,
    cpu: dict[str, float] | None = None,
    server: dict[str, float] | None = None,
    timings: dict[str, float] | None = None,
) -> Iterator[list[tuple[str, str]]]:
    """Drop the non-unique indexes of ``tables`` for the block, build them after it, also
    when it fails (``before_drop``/``after_create``: extra structures such as FTS tables).
    ``phases``/``cpu``/``server``: wall, this process's and (PostgreSQL on this machine)
    the server's CPU seconds of the builds, as "indexes"; ``timings``: seconds per table."""
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
        started, processor = time.monotonic(), time.process_time()
        spent = indexes_create(indexes, progress, timings=timings)
        if after_create:
            begun = time.monotonic()
            after_create()
            if timings is not None:
                timings["text search"] = timings.get("text search", 0.0) + (
                    time.monotonic() - begun
                )
        seconds = time.monotonic() - started
        if phases is not None:
            phases["indexes"] = phases.get("indexes", 0.0) + seconds
        if cpu is not None:
            cpu["indexes"] = cpu.get("indexes", 0.0) + time.process_time() - processor
        if server is not None and spent is not None:
            server["indexes"] = server.get("indexes", 0.0) + spent
        if progress:
            progress(f"{len(indexes)} indexes rebuilt in {seconds:.1f} s")


@contextlib.contextmanager
def foreign_keys_off(enabled: bool) -> Iterator[bool]:
    """Foreign-key checks off for the block where the database allows it (not inside a
    transaction on SQLite; PostgreSQL needs a superuser). Yields whether they are off."""
    if not enabled:
        yield False
        return
    if connection.vendor == "sqlite":
        off = connection.disable_constraint_checking()
        try:
            yield off
        finally:
            if off:
                connection.enable_constraint_checking()
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
    except DatabaseError:
        yield False
        return
    try:
        yield True
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


def foreign_keys_verify(firsts: dict[type[models.Model], int]) -> int:
    """Every foreign key of the rows from ``firsts[model]`` on points at a row.

    The generator hands out ids in blocks, so ranges prove most keys: one pass per table
    finds the smallest and largest value of each foreign key among the new rows; when the
    referenced table holds every id in that range (a count over its primary key), every
    value points at a row. Only a key whose range has holes is checked row by row (an
    anti-join). Raises RuntimeError naming the first broken key; returns the keys checked."""
    qn = connection.ops.quote_name
    checked = 0
    with connection.cursor() as cursor:
        for model, first in firsts.items():
            relations = [f for f in model._meta.concrete_fields if f.is_relation]
            if not relations:
                continue
            key = qn(str(model._meta.pk.column))
            parts = ", ".join(
                f"MIN({qn(str(f.column))}), MAX({qn(str(f.column))})" for f in relations
            )
            cursor.execute(
                f"SELECT {parts} FROM {qn(model._meta.db_table)} WHERE {key} >= %s", [first]
            )
            values = cursor.fetchone()
            for index, fk in enumerate(relations):
                checked += 1
                low, high = values[2 * index], values[2 * index + 1]
                if low is None:
                    continue  # no new row sets it
                target = fk.target_field  # type: ignore[attr-defined]
                if target.primary_key:
                    parent = target.model
                    column = qn(str(target.column))
                    cursor.execute(
                        f"SELECT COUNT(*) FROM {qn(parent._meta.db_table)} "
                        f"WHERE {column} BETWEEN %s AND %s",
                        [low, high],
                    )
                    if cursor.fetchone()[0] == high - low + 1:
                        continue  # every id in the range exists
                _anti_join(cursor, model, fk, first)
    return checked


def _anti_join(cursor, model: type[models.Model], fk, first: int) -> None:
    qn = connection.ops.quote_name
    key = qn(str(model._meta.pk.column))
    target = fk.target_field
    table, parent = qn(model._meta.db_table), qn(target.model._meta.db_table)
    column, target_column = qn(str(fk.column)), qn(str(target.column))
    cursor.execute(
        f"SELECT c.{key} FROM {table} c "
        f"LEFT JOIN {parent} p ON p.{target_column} = c.{column} "
        f"WHERE c.{key} >= %s AND c.{column} IS NOT NULL "
        f"AND p.{target_column} IS NULL LIMIT 1",
        [first],
    )
    broken = cursor.fetchone()
    if broken:
        raise RuntimeError(f"{model._meta.label}.{fk.name}: row {broken[0]} points at nothing")
