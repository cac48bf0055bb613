"""Substring indexes for customer search: pg_trgm on PostgreSQL, FTS5 trigram on SQLite.

``LIKE '%华为技%'`` cannot use a B-tree, so at a million customers every search read the
whole table. Both databases have a trigram index that answers substring queries of three
or more characters from the index:

- PostgreSQL: one multi-column GIN index (``gin_trgm_ops``) on the expressions Django's
  lookups produce (``UPPER(name::text)`` for ``icontains``, the plain column for
  ``contains``), plus one on contact names. The ORM query is unchanged; the planner uses it.
- SQLite (3.34+): an external-content FTS5 table with the trigram tokenizer over the
  searchable columns, kept in sync by triggers. Queries go through ``MATCH``.

Two-character queries have no trigram; a bigram index answers them (most Chinese names are
searched by two characters: 华为, 永泰, a contact's 王芳):

- PostgreSQL: GIN indexes on ``kehu_bigrams(UPPER(column))``, an immutable SQL function
  giving a text's distinct two-character substrings; queries ask ``@> ARRAY[UPPER(%s)]``.
- SQLite: a ``WITHOUT ROWID`` table of (bigram, id) per searched table, kept by triggers
  that cut the text against a table of positions (SQLite triggers allow no loops or CTEs).

One-character queries use the B-tree prefix paths and a scan bounded to the newest rows
(see ``customer_search_q``).

Bulk inserts (imports, ``customer_create_many``) have the insert triggers skip their block of
new ids and fill both SQLite indexes once per batch (``text_index_bulk_insert``).

The objects are created by migration 0003 and re-checked after every ``migrate`` (a later
migration that rebuilds the customers table on SQLite drops its triggers; the check puts
them back and rebuilds the index), and by ``--no-migrations`` test databases.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

from django.db import OperationalError, connections

CUSTOMER_TABLE = "customers_customer"
CONTACT_TABLE = "customers_contact"
# Columns of the SQLite FTS tables; names match the content table's columns.
CUSTOMER_FTS_COLUMNS = (
    "name",
    "short_name",
    "name_initials",
    "name_pinyin",
    "phone_digits",
    "mobile_digits",
    "email",
)
CONTACT_FTS_COLUMNS = ("name",)
MIN_TRIGRAM = 3
BIGRAM = 2
# Customer columns cut into bigrams (contacts: their name). Latin text is upper-cased, as
# ``icontains`` folds it. Initials and pinyin are left out: two letters of them match a
# large share of all customers, and their prefixes have B-tree indexes.
CUSTOMER_BIGRAM_COLUMNS = ("name", "short_name")
CONTACT_BIGRAM_COLUMNS = ("name",)
POSITIONS_TABLE = "kehu_text_positions"
POSITIONS = 200  # the longest searched column (customer name, initials)
# Id ranges whose rows a bulk insert indexes itself, one statement per batch: the insert
# triggers skip them (``text_index_bulk_insert``). Empty outside such a transaction.
DEFERRED_TABLE = "kehu_text_index_deferred"

PG_BIGRAM_FUNCTION = """
CREATE OR REPLACE FUNCTION kehu_bigrams(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(value, i, 2)), '{}'::text[])
  FROM generate_series(1, length(value) - 1) AS i
$$"""


def pg_bigram_expression(columns: tuple[str, ...], alias: str = "") -> str:
    """The indexed expression; a query must repeat it exactly for the planner to use it."""
    prefix = f"{alias}." if alias else ""
    return " || ".join(f"kehu_bigrams(UPPER({prefix}{c}::text))" for c in columns)


PG_INDEXES = {
    "cust_search_trgm": (
        f"CREATE INDEX IF NOT EXISTS cust_search_trgm ON {CUSTOMER_TABLE} USING gin ("
        "UPPER(name::text) gin_trgm_ops, UPPER(short_name::text) gin_trgm_ops, "
        "name_initials gin_trgm_ops, name_pinyin gin_trgm_ops, phone_digits gin_trgm_ops, "
        "mobile_digits gin_trgm_ops, UPPER(email::text) gin_trgm_ops)"
    ),
    "contact_name_trgm": (
        f"CREATE INDEX IF NOT EXISTS contact_name_trgm ON {CONTACT_TABLE} "
        "USING gin (UPPER(name::text) gin_trgm_ops)"
    ),
    "cust_search_bigram": (
        f"CREATE INDEX IF NOT EXISTS cust_search_bigram ON {CUSTOMER_TABLE} "
        f"USING gin (({pg_bigram_expression(CUSTOMER_BIGRAM_COLUMNS)}))"
    ),
    "contact_name_bigram": (
        f"CREATE INDEX IF NOT EXISTS contact_name_bigram ON {CONTACT_TABLE} "
        f"USING gin (({pg_bigram_expression(CONTACT_BIGRAM_COLUMNS)}))"
    ),
}


def fts_table(table: str) -> str:
    return f"{table}_fts"


def sqlite_has_trigram() -> bool:
    return sqlite3.sqlite_version_info >= (3, 34, 0)


def _not_deferred(table: str) -> str:
    """The insert triggers' WHEN: the new row is not in a range a bulk insert indexes."""
    return (
        f"WHEN NOT EXISTS (SELECT 1 FROM {DEFERRED_TABLE} d WHERE d.tbl = '{table}' "
        "AND new.id BETWEEN d.low AND d.high)"
    )


def _sqlite_triggers_ensure(cursor, statements: list[str]) -> bool:
    """Create the triggers ``statements`` define; one stored with other SQL (an older
    definition) is replaced. Returns whether one was missing: rows may have been written
    without it."""
    prefix = "CREATE TRIGGER IF NOT EXISTS "
    names = [statement.removeprefix(prefix).split(" ", 1)[0] for statement in statements]
    marks = ", ".join(["%s"] * len(names))
    cursor.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})",
        names,
    )
    stored = dict(cursor.fetchall())
    missing = False
    for name, statement in zip(names, statements, strict=True):
        # SQLite stores the statement without IF NOT EXISTS.
        if stored.get(name) == "CREATE TRIGGER " + statement.removeprefix(prefix):
            continue
        if name in stored:
            cursor.execute(f"DROP TRIGGER {name}")
        else:
            missing = True
        cursor.execute(statement)
    return missing


def _sqlite_statements(table: str, columns: tuple[str, ...]) -> list[str]:
    fts = fts_table(table)
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} "
        f"{_not_deferred(table)} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {cols} ON {table} "
        f"BEGIN {delete} {insert} END",
    ]


def _sqlite_ensure(cursor, table: str, columns: tuple[str, ...]) -> None:
    fts = fts_table(table)
    cursor.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
        [f"{fts}%"],
    )
    existing = {row[0] for row in cursor.fetchall()}
    missing = fts not in existing
    if missing:
        cursor.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5({', '.join(columns)}, "
            f"content='{table}', content_rowid='id', tokenize='trigram')"
        )
    if not _sqlite_triggers_ensure(cursor, _sqlite_statements(table, columns)) and not missing:
        return
    # Rows written while a trigger was missing: index everything again.
    cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def bigram_table(table: str) -> str:
    return f"{table}_bigram"


def _sqlite_bigrams_of(row: str, columns: tuple[str, ...]) -> str:
    """SELECT of (bigram) for the ``row`` (new/old or a table alias) of a trigger."""
    texts = " UNION ALL ".join(f"SELECT upper({row}.{c}) AS t" for c in columns)
    return (
        f"SELECT DISTINCT substr(v.t, p.i, 2) FROM {POSITIONS_TABLE} p, ({texts}) v "
        "WHERE p.i < length(v.t)"
    )


def _sqlite_bigram_statements(table: str, columns: tuple[str, ...]) -> list[str]:
    grams = bigram_table(table)
    insert = f"INSERT OR IGNORE INTO {grams}(gram, id) SELECT g.*, new.id FROM "
    insert += f"({_sqlite_bigrams_of('new', columns)}) g;"
    delete = f"DELETE FROM {grams} WHERE id = old.id AND gram IN ("
    delete += f"{_sqlite_bigrams_of('old', columns)});"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {grams}_ai AFTER INSERT ON {table} "
        f"{_not_deferred(table)} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {grams}_ad AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {grams}_au AFTER UPDATE OF {', '.join(columns)} "
        f"ON {table} BEGIN {delete} {insert} END",
    ]


def _sqlite_bigram_ensure(cursor, table: str, columns: tuple[str, ...]) -> None:
    grams = bigram_table(table)
    cursor.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
        [f"{grams}%"],
    )
    existing = {row[0] for row in cursor.fetchall()}
    if {grams, f"{grams}_ai", f"{grams}_ad", f"{grams}_au"} <= existing:
        # All there: only a trigger of an older definition is replaced.
        _sqlite_triggers_ensure(cursor, _sqlite_bigram_statements(table, columns))
        return
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} (i INTEGER PRIMARY KEY) WITHOUT ROWID"
    )
    cursor.execute(f"SELECT COUNT(*) FROM {POSITIONS_TABLE}")
    if cursor.fetchone()[0] != POSITIONS:
        cursor.execute(f"DELETE FROM {POSITIONS_TABLE}")
        for i in range(1, POSITIONS + 1):
            cursor.execute(f"INSERT INTO {POSITIONS_TABLE} (i) VALUES (%s)", [i])
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS {grams} (gram TEXT NOT NULL, id INTEGER NOT NULL, "
        "PRIMARY KEY (gram, id)) WITHOUT ROWID"
    )
    _sqlite_triggers_ensure(cursor, _sqlite_bigram_statements(table, columns))
    # Rows written while a trigger was missing: cut everything again, in one statement.
    cursor.execute(f"DELETE FROM {grams}")
    cursor.execute(_sqlite_bigram_fill(table, columns))


def _sqlite_bigram_fill(table: str, columns: tuple[str, ...], where: str = "") -> str:
    """INSERT of the bigrams of ``table``'s rows (those matching ``where``), as the insert
    trigger cuts them, in one statement."""
    texts = " UNION ALL ".join(f"SELECT id, upper({c}) AS t FROM {table}{where}" for c in columns)
    return (
        f"INSERT OR IGNORE INTO {bigram_table(table)}(gram, id) SELECT substr(v.t, p.i, 2), "
        f"v.id FROM ({texts}) v JOIN {POSITIONS_TABLE} p ON p.i < length(v.t) ORDER BY 1, 2"
    )  # in key order: the B-tree is appended to, not split at random


def text_index_ensure(using: str = "default") -> None:
    """Create the substring indexes if missing (idempotent; cheap when present)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            cursor.execute(PG_BIGRAM_FUNCTION)
            for statement in PG_INDEXES.values():
                cursor.execute(statement)
        elif connection.vendor == "sqlite" and sqlite_has_trigram():
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {DEFERRED_TABLE} "
                "(tbl TEXT NOT NULL, low INTEGER NOT NULL, high INTEGER NOT NULL)"
            )
            _sqlite_ensure(cursor, CUSTOMER_TABLE, CUSTOMER_FTS_COLUMNS)
            _sqlite_ensure(cursor, CONTACT_TABLE, CONTACT_FTS_COLUMNS)
            _sqlite_bigram_ensure(cursor, CUSTOMER_TABLE, CUSTOMER_BIGRAM_COLUMNS)
            _sqlite_bigram_ensure(cursor, CONTACT_TABLE, CONTACT_BIGRAM_COLUMNS)


SQLITE_INDEXED = {CUSTOMER_TABLE: CUSTOMER_FTS_COLUMNS, CONTACT_TABLE: CONTACT_FTS_COLUMNS}
SQLITE_BIGRAMS = {CUSTOMER_TABLE: CUSTOMER_BIGRAM_COLUMNS, CONTACT_TABLE: CONTACT_BIGRAM_COLUMNS}


@contextlib.contextmanager
def text_index_bulk_insert(table: str, ids: list[int], using: str = "default") -> Iterator[None]:
    """Index the rows of ``table`` that the block inserts, whose ids are ``ids``, by one
    statement per index after the block instead of by the insert triggers row by row.

    SQLite: the block's id range is written to ``DEFERRED_TABLE``, which the insert
    triggers (FTS5, bigrams) consult to skip the row; the range row is deleted again in
    the same transaction, so no other connection ever sees it (one writer; readers see the
    last commit), and a rollback takes it away with the rows. Inserted one statement a row
    (``executemany``), FTS5 flushes its pending terms at the end of every statement,
    writing and merging small segments (20,000 rows in memory: 0.44 s of CPU, against
    0.05 s as one statement), and the bigram B-tree is written a row at a time in no order;
    a batch does each once, in key order. The index entries are the triggers' own
    (tested). The block must only insert, and ``ids`` must be new ids with no stored row
    between the smallest and the largest (``table_ids_reserve`` gives such a block).
    PostgreSQL keeps its indexes in the inserts: nothing to do. Triggers of an older
    definition (no ``text_index_ensure`` since) stay in charge, row by row."""
    connection = connections[using]
    if not ids or connection.vendor != "sqlite" or table not in SQLITE_INDEXED:
        yield
        return
    fts, grams = f"{fts_table(table)}_ai", f"{bigram_table(table)}_ai"
    low, high = min(ids), max(ids)
    with connection.cursor() as cursor:
        # The range is written only when both insert triggers consult it (not those of an
        # older definition, before ``text_index_ensure`` replaced them): one query.
        try:
            cursor.execute(
                f"INSERT INTO {DEFERRED_TABLE} (tbl, low, high) SELECT %s, %s, %s WHERE "
                "(SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (%s, %s) "
                "AND instr(sql, %s)) = 2",
                [table, low, high, fts, grams, DEFERRED_TABLE],
            )
        except OperationalError:  # no such table: SQLite refused the statement, nothing else
            deferring = False
        else:
            deferring = cursor.rowcount == 1
        if not deferring:
            yield
            return
        try:
            yield
        finally:
            # Also when the block fails: a caller that goes on without rolling back must
            # not leave later rows of the range unindexed.
            cursor.execute(
                f"DELETE FROM {DEFERRED_TABLE} WHERE tbl = %s AND low = %s AND high = %s",
                [table, low, high],
            )
        where = f" WHERE id BETWEEN {int(low)} AND {int(high)}"
        columns = ", ".join(SQLITE_INDEXED[table])
        cursor.execute(
            f"INSERT INTO {fts_table(table)}(rowid, {columns}) "
            f"SELECT id, {columns} FROM {table}{where}"
        )
        cursor.execute(_sqlite_bigram_fill(table, SQLITE_BIGRAMS[table], where))


def text_index_drop(using: str = "default") -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in PG_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
        elif connection.vendor == "sqlite":
            for table in (CUSTOMER_TABLE, CONTACT_TABLE):
                for derived in (fts_table(table), bigram_table(table)):
                    for suffix in ("_ai", "_ad", "_au"):
                        cursor.execute(f"DROP TRIGGER IF EXISTS {derived}{suffix}")
                    cursor.execute(f"DROP TABLE IF EXISTS {derived}")


def fts_available(using: str = "default") -> bool:
    return connections[using].vendor == "sqlite" and sqlite_has_trigram()


def bigram_select(table: str, text: str, id_column: str = "id") -> tuple[str, tuple]:
    """SELECT of ``id_column`` of the rows of ``table`` (customers or contacts) whose
    searched text contains the two characters ``text``, from the bigram index."""
    columns = CUSTOMER_BIGRAM_COLUMNS if table == CUSTOMER_TABLE else CONTACT_BIGRAM_COLUMNS
    live = " AND deleted_at IS NULL" if table == CONTACT_TABLE else ""
    if connections["default"].vendor == "postgresql":
        expression = pg_bigram_expression(columns)
        return (
            f"SELECT {id_column} FROM {table} WHERE ({expression}) @> ARRAY[UPPER(%s)]{live}",
            (text,),
        )
    grams = bigram_table(table)
    if id_column == "id":
        return (f"SELECT id FROM {grams} WHERE gram = upper(%s)", (text,))
    return (
        f"SELECT {id_column} FROM {table} WHERE id IN "
        f"(SELECT id FROM {grams} WHERE gram = upper(%s)){live}",
        (text,),
    )


def fts_match(columns: tuple[str, ...], text: str) -> str:
    """An FTS5 query for ``text`` as one phrase in ``columns`` (quotes doubled, so any
    input is a literal phrase, never query syntax)."""
    phrase = '"' + text.replace('"', '""') + '"'
    return "{" + " ".join(columns) + "} : " + phrase
