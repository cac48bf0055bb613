"""Migration 0008: PostgreSQL's varchar_pattern_ops twins of the customer columns compared
only for equality are dropped (the import writes eight fewer index entries a row); the
name prefix search keeps its own; backwards makes them again under Django's names."""

import importlib

import pytest
from django.apps import apps
from django.db import connection

from kehu.customers.models import Customer

migration = importlib.import_module("kehu.customers.migrations.0008_drop_unused_pattern_indexes")


def _pattern_indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s",
            [Customer._meta.db_table, "%varchar_pattern_ops%"],
        )
        return dict(cursor.fetchall())


class _NoSQL:
    connection = connection

    def execute(self, sql, params=()):
        raise AssertionError(f"no SQL on {connection.vendor}: {sql}")


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite")
def test_sqlite_has_no_such_indexes_and_nothing_is_run():
    migration.drop(apps, _NoSQL())
    migration.create(apps, _NoSQL())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's indexes")
@pytest.mark.django_db
def test_the_six_twins_go_and_come_back_the_name_prefix_ones_stay():
    before = _pattern_indexes()
    with connection.schema_editor() as editor:
        migration.drop(apps, editor)
    after = _pattern_indexes()
    dropped = {before[name].rsplit("(", 1)[1].split()[0] for name in before if name not in after}
    assert dropped == set(migration.COLUMNS)  # the columns, read from the dropped definitions
    # What the search's prefix lookups (``_prefix_q``) read stays.
    assert sorted("name_normalized" in n or "name_initials" in n for n in after) == [True, True]
    with connection.schema_editor() as editor:
        migration.create(apps, editor)
    assert _pattern_indexes() == before  # the same names and definitions as Django's
