"""Bulk writes of imports (issue 8): multi-row statements on SQLite, the import's SQLite
pragmas set for the run and given back."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kehu.core import imports
from kehu.core.imports import model_columns, table_rows_insert
from kehu.customers.imports import CustomerImporter
from kehu.customers.models import CustomerTag

sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="SQLite's statements and pragmas"
)


def _tags(count: int, start: int = 0) -> list[tuple]:
    return [(f"标签{n:04d}",) for n in range(start, start + count)]


@pytest.mark.django_db
@pytest.mark.parametrize("params", [2, 5, 7, 1000])
def test_rows_are_written_whole_in_statements_of_as_many_rows_as_sqlite_takes(monkeypatch, params):
    columns = model_columns(CustomerTag, ["name"])
    if connection.vendor == "sqlite":
        monkeypatch.setattr(imports, "_sqlite_max_params", lambda cursor: params)
    with CaptureQueriesContext(connection) as captured:
        assert table_rows_insert(CustomerTag._meta.db_table, columns, _tags(7)) == 7
    names = sorted(CustomerTag.objects.values_list("name", flat=True))
    assert names == [f"标签{n:04d}" for n in range(7)]
    if connection.vendor == "sqlite":
        # Full statements of ``params`` rows, then the rest (a multiple of 64 rows first).
        full, rest = divmod(7, params)
        assert len(captured.captured_queries) == full + (rest > 0)
    assert table_rows_insert(CustomerTag._meta.db_table, columns, []) == 0


@sqlite_only
def test_a_remainder_is_a_multiple_of_64_rows_and_the_last_few(db, monkeypatch):
    monkeypatch.setattr(imports, "_sqlite_max_params", lambda cursor: 500)
    monkeypatch.setattr(imports, "_SQLITE_SPLIT_PARAMS", 10)
    columns = model_columns(CustomerTag, ["name"])
    with CaptureQueriesContext(connection) as captured:
        table_rows_insert(CustomerTag._meta.db_table, columns, _tags(1100))
    sizes = [query["sql"].count("(") - 1 for query in captured.captured_queries]
    assert sizes == [500, 500, 64, 36]
    assert CustomerTag.objects.count() == 1100


@sqlite_only
def test_the_parameter_limit_is_sqlites_own_and_at_most_32766(db):
    with connection.cursor() as cursor:
        assert 999 <= imports._sqlite_max_params(cursor) <= 32_766


@sqlite_only
def test_a_failing_statement_writes_none_of_its_rows(db):
    columns = model_columns(CustomerTag, ["name"])
    table_rows_insert(CustomerTag._meta.db_table, columns, _tags(1, start=3))
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        table_rows_insert(CustomerTag._meta.db_table, columns, _tags(5))  # 3 is stored
    assert CustomerTag.objects.count() == 1


def _pragma(name: str):
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


@sqlite_only
def test_the_import_runs_with_a_large_page_cache_and_gives_the_setting_back(org):
    before = _pragma("cache_size")
    seen = []
    write_batch = CustomerImporter.write_batch

    def spy(self, rows):
        seen.append(_pragma("cache_size"))
        return write_batch(self, rows)

    text = "Name\n甲公司\n乙公司\n"
    for mode in ("good_rows", "all_or_nothing"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(CustomerImporter, "write_batch", spy)
            result = imports.import_run(
                importer=CustomerImporter(user=org.sales1, duplicate_policy="create"),
                data=text.encode(),
                filename="c.csv",
                mode=mode,
            )
        assert result.created == 2 and not result.errors
    assert seen == [-imports.SQLITE_IMPORT_CACHE_KIB] * 2
    assert _pragma("cache_size") == before


@sqlite_only
def test_statement_journals_in_memory_only_outside_a_transaction(transactional_db):
    before = _pragma("temp_store")
    with imports._sqlite_import_pragmas():
        assert _pragma("temp_store") == 2  # MEMORY
        assert _pragma("cache_size") == -imports.SQLITE_IMPORT_CACHE_KIB
    assert _pragma("temp_store") == before
    from django.db import transaction

    with transaction.atomic(), imports._sqlite_import_pragmas():
        # SQLite refuses to change temp_store inside a transaction: left as it was.
        assert _pragma("temp_store") == before
    assert _pragma("temp_store") == before
