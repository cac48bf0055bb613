"""Substring indexes for customer search: pg_trgm on PostgreSQL, FTS5 trigram on SQLite.

``LIKE '%华为技%'`` cannot use a B-tree, so at a million customers every search read the
whole table. Both databases have a trigram index that answers substring queries of three
or more characters from the index:

- PostgreSQL: one multi-column GIN index (``gin_trgm_ops``) on the expressions Django's
  lookups produce (``UPPER(name::text)`` for ``icontains``, the plain column for
  ``contains``), plus one on contact names. The ORM query is unchanged; the planner uses it.
- SQLite (3.34+): an external-content FTS5 table with the trigram tokenizer over the
  searchable columns, kept in sync by triggers. Queries go through ``MATCH``.

Shorter queries (one or two characters) have no trigram: they use the B-tree prefix paths
and a scan bounded to the newest rows (see ``customer_search_q``).

The objects are created by migration 0003 and re-checked after every ``migrate`` (a later
migration that rebuilds the customers table on SQLite drops its triggers; the check puts
them back and rebuilds the index), and by ``--no-migrations`` test databases.
"""

from __future__ import annotations

import sqlite3

from django.db import connections

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
}


def fts_table(table: str) -> str:
    return f"{table}_fts"


def sqlite_has_trigram() -> bool:
    return sqlite3.sqlite_version_info >= (3, 34, 0)


def _sqlite_statements(table: str, columns: tuple[str, ...]) -> list[str]:
    fts = fts_table(table)
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    delete = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.id, {old});"
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.id, {new});"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END",
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
    wanted = {fts, f"{fts}_ai", f"{fts}_ad", f"{fts}_au"}
    if wanted <= existing:
        return
    if fts not in existing:
        cursor.execute(
            f"CREATE VIRTUAL TABLE {fts} USING fts5({', '.join(columns)}, "
            f"content='{table}', content_rowid='id', tokenize='trigram')"
        )
    for statement in _sqlite_statements(table, columns):
        cursor.execute(statement)
    # Rows written while a trigger was missing: index everything again.
    cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")


def text_index_ensure(using: str = "default") -> None:
    """Create the substring indexes if missing (idempotent; cheap when present)."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            for statement in PG_INDEXES.values():
                cursor.execute(statement)
        elif connection.vendor == "sqlite" and sqlite_has_trigram():
            _sqlite_ensure(cursor, CUSTOMER_TABLE, CUSTOMER_FTS_COLUMNS)
            _sqlite_ensure(cursor, CONTACT_TABLE, CONTACT_FTS_COLUMNS)


def text_index_drop(using: str = "default") -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in PG_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
        elif connection.vendor == "sqlite":
            for table in (CUSTOMER_TABLE, CONTACT_TABLE):
                fts = fts_table(table)
                for suffix in ("_ai", "_ad", "_au"):
                    cursor.execute(f"DROP TRIGGER IF EXISTS {fts}{suffix}")
                cursor.execute(f"DROP TABLE IF EXISTS {fts}")


def fts_available(using: str = "default") -> bool:
    return connections[using].vendor == "sqlite" and sqlite_has_trigram()


def fts_match(columns: tuple[str, ...], text: str) -> str:
    """An FTS5 query for ``text`` as one phrase in ``columns`` (quotes doubled, so any
    input is a literal phrase, never query syntax)."""
    phrase = '"' + text.replace('"', '""') + '"'
    return "{" + " ".join(columns) + "} : " + phrase
