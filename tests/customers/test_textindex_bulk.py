"""Bulk-created customers (imports) are indexed for search by one statement per batch, not by
the insert triggers row by row: the same index entries, and the triggers always back."""

import pytest
from django.db import connection

from kehu.core import imports as core_imports
from kehu.core.imports import import_run
from kehu.customers import selectors, services, textindex
from kehu.customers.imports import CustomerImporter
from kehu.customers.models import Customer
from tests.customers.factories import CustomerFactory

NAMES = [
    ("上海永泰电子有限公司", "Acme沪"),
    ("杭州远图信息有限公司", ""),
    ("Beijing ByteWorks 科技", "bw"),
    ("苏州博远精密仪器有限公司", "博远"),
    ("甲", "乙"),  # no bigram at all
]


def found(user, query) -> set[str]:
    return set(selectors.customer_search(user=user, query=query).values_list("name", flat=True))


def bulk_create(user, names=NAMES) -> list[int]:
    checks = services.CustomerDraftChecks()
    drafts = [
        services.customer_draft(
            actor=user, data={"name": name, "short_name": short}, tags=["批量"], checks=checks
        )
        for name, short in names
    ]
    return services.customer_create_many(actor=user, drafts=drafts)


def insert_triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
            [textindex.CUSTOMER_TABLE],
        )
        return {row[0] for row in cursor.fetchall()}


def index_rows(ids: list[int]) -> tuple[list[tuple], list[tuple]]:
    """The bigram rows and the FTS rows (what a trigram query reads) of ``ids``."""
    marks = ", ".join(["%s"] * len(ids))
    grams = textindex.bigram_table(textindex.CUSTOMER_TABLE)
    fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT gram, id FROM {grams} WHERE id IN ({marks}) ORDER BY 1, 2", ids)
        bigrams = cursor.fetchall()
        # The terms the FTS index holds for these rows (fts5vocab reads the index itself).
        cursor.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.cust_vocab "
            f"USING fts5vocab(main, {fts}, instance)"
        )
        cursor.execute(
            f"SELECT term, doc, col, offset FROM temp.cust_vocab WHERE doc IN ({marks}) "
            "ORDER BY 1, 2, 3, 4",
            ids,
        )
        terms = cursor.fetchall()
    return bigrams, terms


def test_bulk_created_customers_are_found_by_two_and_more_characters(org, monkeypatch):
    monkeypatch.setattr(selectors, "SHORT_QUERY_SCAN", 0)  # two characters: bigrams only
    CustomerFactory(owner=org.sales1, name="无关客户有限公司")
    bulk_create(org.sales1)
    assert found(org.sales1, "泰电") == {"上海永泰电子有限公司"}
    assert found(org.sales1, "e沪") == {"上海永泰电子有限公司"}  # short name, case folded
    assert found(org.sales1, "远图信") == {"杭州远图信息有限公司"}
    assert found(org.sales1, "byte") == {"Beijing ByteWorks 科技"}
    assert found(org.sales1, "精密仪器") == {"苏州博远精密仪器有限公司"}
    assert found(org.sales1, "关客") == {"无关客户有限公司"}
    assert found(org.sales2, "泰电") == set()  # scope as before


@pytest.mark.skipif(not textindex.sqlite_has_trigram(), reason="SQLite FTS5 trigram")
def test_bulk_index_entries_are_the_triggers_entries(org):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's trigger-kept tables")
    before = insert_triggers()
    assert {"customers_customer_fts_ai", "customers_customer_bigram_ai"} <= before
    ids = bulk_create(org.sales1)
    assert insert_triggers() == before
    bulk = index_rows(ids)
    assert bulk[0] and bulk[1]
    # The same customers again, one by one: the triggers index them.
    ids_again = bulk_create_one_by_one(org.sales1)
    assert index_rows(ids_again) == renumbered(bulk, dict(zip(ids, ids_again, strict=True)))
    fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")


def bulk_create_one_by_one(user) -> list[int]:
    return [
        services.customer_create(
            actor=user,
            data={"name": name, "short_name": short},
            tags=["批量"],
            allow_duplicate=True,
        ).pk
        for name, short in NAMES
    ]


def renumbered(rows, ids: dict[int, int]):
    bigrams, terms = rows
    return (
        sorted((gram, ids[pk]) for gram, pk in bigrams),
        sorted((term, ids[doc], col, offset) for term, doc, col, offset in terms),
    )


def deferred_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tbl, low, high FROM {textindex.DEFERRED_TABLE}")
        return cursor.fetchall()


@pytest.mark.skipif(not textindex.sqlite_has_trigram(), reason="SQLite FTS5 trigram")
def test_a_failed_bulk_insert_leaves_no_deferred_range(org):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's trigger-kept tables")
    ids = core_imports.table_ids_reserve(Customer, 2)

    class Refused(Exception):
        pass

    bulk = textindex.text_index_bulk_insert(textindex.CUSTOMER_TABLE, ids)
    with pytest.raises(Refused), bulk:
        assert deferred_rows() == [(textindex.CUSTOMER_TABLE, ids[0], ids[1])]
        raise Refused
    assert deferred_rows() == []
    created = services.customer_create(actor=org.sales1, data={"name": "宁波海天塑机有限公司"})
    assert found(org.sales1, "海天塑") == {created.name}


@pytest.mark.skipif(not textindex.sqlite_has_trigram(), reason="SQLite FTS5 trigram")
def test_older_triggers_index_row_by_row_until_ensure_replaces_them(org, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's trigger-kept tables")
    monkeypatch.setattr(selectors, "SHORT_QUERY_SCAN", 0)
    old = {}
    with connection.cursor() as cursor:
        for name in ("customers_customer_fts_ai", "customers_customer_bigram_ai"):
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [name])
            sql = cursor.fetchone()[0]
            old[name] = sql[: sql.index(" WHEN ")] + sql[sql.index(" BEGIN ") :]
            cursor.execute(f"DROP TRIGGER {name}")
            cursor.execute(old[name])  # as commit 23db5ca created them
    bulk_create(org.sales1, NAMES[:1])
    assert found(org.sales1, "泰电") == {NAMES[0][0]}  # the triggers indexed it
    textindex.text_index_ensure()
    assert insert_triggers() >= set(old)
    with connection.cursor() as cursor:
        for name in old:
            cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [name])
            assert textindex.DEFERRED_TABLE in cursor.fetchone()[0]
    bulk_create(org.sales1, NAMES[1:2])
    assert found(org.sales1, "远图") == {NAMES[1][0]}
    assert found(org.sales1, "泰电") == {NAMES[0][0]}  # not indexed twice, nor lost
    fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")


def test_import_in_batches_finds_every_row(org, monkeypatch):
    monkeypatch.setattr(core_imports, "BATCH_SIZE", 3)
    monkeypatch.setattr(selectors, "SHORT_QUERY_SCAN", 0)
    names = [f"导入检索{chr(0x4E00 + 7 * n)}{chr(0x4E80 + n)}有限公司" for n in range(8)]
    text = "Name,Mobile\n" + "".join(f"{name},1390000{n:04d}\n" for n, name in enumerate(names))
    text += "坏行公司,12\n"  # an error row inside a batch
    result = import_run(
        importer=CustomerImporter(user=org.sales1),
        data=text.encode(),
        filename="customers.csv",
        mode="good_rows",
    )
    assert result.created == 8 and [e["line"] for e in result.errors] == [10]
    for n, name in enumerate(names):
        assert found(org.sales1, name[4:6]) == {name}  # two characters
        assert found(org.sales1, name[3:7]) == {name}  # a trigram query
        assert found(org.sales1, f"1390000{n:04d}") == {name}
    assert found(org.sales1, "坏行") == set()
