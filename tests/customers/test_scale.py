"""Scale pieces: the generator, the benchmark command, bounded counts, substring indexes."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Max
from django.utils import timezone

from kehu.core.models import DocumentSequence
from kehu.core.pagination import BoundedPaginator
from kehu.customers import selectors, services, textindex
from kehu.customers.models import Contact, Customer, CustomerEvent, FollowUp, Opportunity
from kehu.customers.normalize import name_initials, name_normalize, name_pinyin, phone_normalize
from kehu.customers.services import CUSTOMER_CODE_PREFIX
from tests.customers.factories import ContactFactory, CustomerFactory


def _sequence() -> int:
    row = DocumentSequence.objects.filter(
        prefix=CUSTOMER_CODE_PREFIX, year=timezone.localdate().year
    ).first()
    return row.last_value if row else 0


@pytest.fixture
def generated(org, settings):
    settings.DEBUG = True
    before = _sequence()
    call_command("generate_customers", customers=200, batch=70, stdout=io.StringIO())
    return before


def test_generate_customers_writes_consistent_rows(org, generated):
    customers = list(Customer.objects.all())
    assert len(customers) == 200
    assert _sequence() == generated + 200
    assert len({c.code for c in customers}) == 200
    sales = {org.sales1.pk, org.sales2.pk, org.sales3.pk, org.salesmgr1.pk, org.salesdirector.pk}
    departments = {u.pk: u.department_id for u in (org.sales1, org.sales2, org.sales3)}
    departments |= {org.salesmgr1.pk: org.salesmgr1.department_id}
    departments |= {org.salesdirector.pk: org.salesdirector.department_id}
    assert any(c.in_pool for c in customers) and any(c.owner_id for c in customers)
    for c in customers:
        if c.in_pool:
            assert c.owner_id is None and c.department_id is None
        else:
            assert c.owner_id in sales and c.department_id == departments[c.owner_id]
        assert c.name_normalized == name_normalize(c.name)
        assert c.name_initials == name_initials(c.name)
        assert c.name_pinyin == name_pinyin(c.name)
        assert c.phone_digits == phone_normalize(c.phone)
        assert c.mobile_digits == phone_normalize(c.mobile)
    assert CustomerEvent.objects.count() == 200
    assert Contact.objects.count() >= 200
    assert FollowUp.objects.filter(customer__in_pool=True).count() == 0
    assert Opportunity.objects.exclude(owner_id__in=sales).count() == 0
    last = dict(
        FollowUp.objects.values("customer")
        .annotate(m=Max("happened_at"))
        .values_list("customer", "m")
    )
    for c in customers:
        assert c.last_followup_at == last.get(c.pk)
    # Ids continue after the generated block: the ORM can insert again.
    assert CustomerFactory(owner=org.sales1).pk > max(c.pk for c in customers)


def test_generated_names_are_searchable(org, generated):
    sample = Customer.objects.filter(owner=org.sales1).first()
    fragment = sample.name_normalized[2:5]
    assert sample in selectors.customer_search(user=org.sales1, query=fragment)


def _schema(tables):
    """Indexes (and on SQLite the FTS tables and triggers) of the generated tables."""
    from kehu.core.bulk import secondary_indexes as _secondary_indexes

    names = {name for name, _sql in _secondary_indexes(tables)}
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE '%%_fts%%'")
            names |= {row[0] for row in cursor.fetchall()}
    return names


def test_generate_with_deferred_indexes_builds_them_again(org, settings):
    from kehu.customers import generate

    tables = [Customer._meta.db_table, Contact._meta.db_table, FollowUp._meta.db_table]
    before = _schema(tables)
    assert {"cust_owner_nfu_idx", "cust_live_idx", "followup_cust_at_idx"} <= before
    generate.customers_generate(customers=120, batch=50, defer_indexes=True)
    assert _schema(tables) == before
    assert Customer.objects.count() == 120
    sample = Customer.objects.filter(owner=org.sales1).first()
    # The search index was built over the loaded rows.
    assert sample in selectors.customer_search(user=org.sales1, query=sample.name_normalized[2:5])
    contact = Contact.objects.filter(customer=sample).first()
    assert sample in selectors.customer_search(user=org.sales1, query=contact.name)


def test_generate_failing_load_still_builds_indexes(org, monkeypatch):
    from kehu.core import bulk
    from kehu.customers import generate

    tables = [Customer._meta.db_table, Contact._meta.db_table]
    before = _schema(tables)

    def fail(self, columns, count, sink=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bulk.RowWriter, "write_columns", fail)
    with pytest.raises(RuntimeError):
        generate.customers_generate(customers=10, defer_indexes=True)
    assert _schema(tables) == before


def test_generate_refuses_without_debug(org, settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError):
        call_command("generate_customers", customers=5, stdout=io.StringIO())
    assert not Customer.objects.exists()


def test_bench_customers_runs(org, generated, tmp_path):
    out = io.StringIO()
    saved = tmp_path / "base.json"
    call_command(
        "bench_customers", runs=2, deep_page=2, deep_page_all=2, save=str(saved), stdout=out
    )
    call_command(
        "bench_customers", runs=2, deep_page=2, deep_page_all=2, baseline=str(saved), stdout=out
    )
    text = out.getvalue()
    assert "list_first" in text and "search_cn3" in text and "detail" in text
    assert "HTTP" not in text  # every page answered 200


# --- bounded counts -------------------------------------------------------------------------


def test_bounded_paginator_exact_below_cap_and_capped_above():
    assert BoundedPaginator(list(range(7)), 3, cap=10).count == 7
    paginator = BoundedPaginator(list(range(7)), 3, cap=5)
    assert paginator.capped and paginator.count == 5 and paginator.num_pages == 2


def test_bounded_paginator_counts_querysets_up_to_the_cap(org):
    for _ in range(4):
        CustomerFactory(owner=org.sales1)
    exact = BoundedPaginator(Customer.objects.all(), 2, cap=10)
    assert (exact.count, exact.capped) == (4, False)
    capped = BoundedPaginator(Customer.objects.all(), 2, cap=3)
    assert (capped.count, capped.capped, capped.count_display) == (3, True, "3")


def test_list_page_says_cap_plus(org, client_for, settings):
    settings.KEHU_LIST_COUNT_CAP = 30
    for _ in range(45):
        CustomerFactory(owner=org.sales1)
    client = client_for(org.sales1)
    body = client.get("/customers/").content.decode()
    assert "1–20 of 30+" in body
    assert client.get("/customers/?page=3").status_code == 404  # pages stop at the cap
    settings.KEHU_LIST_COUNT_CAP = 1000
    body = client_for(org.sales1).get("/customers/").content.decode()
    assert "of 45" in body and "45+" not in body


# --- substring index ------------------------------------------------------------------------


def found(user, query) -> set[str]:
    return set(selectors.customer_search(user=user, query=query).values_list("name", flat=True))


def test_index_follows_create_update_delete_and_merge(org):
    customer = services.customer_create(
        actor=org.sales1, data={"name": "深圳市腾讯计算机系统有限公司"}
    )
    assert found(org.sales1, "腾讯计算") == {customer.name}
    services.customer_update(
        actor=org.sales1,
        customer=customer,
        expected_version=customer.version,
        data={"name": "深圳市鹅厂网络有限公司"},
    )
    assert found(org.sales1, "腾讯计算") == set()
    assert found(org.sales1, "鹅厂网") == {"深圳市鹅厂网络有限公司"}
    other = CustomerFactory(owner=org.sales1, name="杭州阿里巴巴网络有限公司")
    ContactFactory(customer=other, name="马云飞")
    assert found(org.sales1, "马云飞") == {other.name}
    services.customer_merge(actor=org.admin, survivor=customer, merged=other)
    assert found(org.sales1, "阿里巴巴") == set()  # the merged one is gone
    assert found(org.sales1, "马云飞") == {"深圳市鹅厂网络有限公司"}  # its contact moved
    gone = CustomerFactory(owner=org.sales1, name="北京字节跳动科技有限公司")
    assert found(org.sales1, "字节跳动") == {gone.name}
    pk = gone.pk
    Customer.all_objects.filter(pk=pk).delete()
    assert found(org.sales1, "字节跳动") == set()
    if textindex.fts_available():
        fts = textindex.fts_table(textindex.CUSTOMER_TABLE)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {fts} WHERE rowid = %s", [pk])
            assert cursor.fetchone()[0] == 0
            cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('integrity-check')")


def test_substring_search_uses_the_index(org):
    CustomerFactory(owner=org.sales1, name="苏州博远精密仪器有限公司")
    sql, params = selectors.customer_search_sql(user=org.sales1, query="远精密")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        cursor.execute(explain + sql, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    if connection.vendor == "postgresql":
        assert "cust_search_trgm" in plan
    elif textindex.fts_available():
        assert "VIRTUAL TABLE" in plan
    assert found(org.sales1, "远精密") == {"苏州博远精密仪器有限公司"}


def test_short_queries_match_prefixes_and_recent_substrings(org):
    CustomerFactory(owner=org.sales1, name="华为技术有限公司")
    assert found(org.sales1, "华为") == {"华为技术有限公司"}
    assert found(org.sales1, "技术") == {"华为技术有限公司"}
    assert found(org.sales1, "hw") == {"华为技术有限公司"}


def test_two_characters_are_found_in_any_customer_from_the_bigram_index(org, monkeypatch):
    # No bounded scan at all: what two characters find comes from the bigram indexes only.
    monkeypatch.setattr(selectors, "SHORT_QUERY_SCAN", 0)
    old = CustomerFactory(owner=org.sales1, name="上海永泰电子有限公司", short_name="Acme沪")
    ContactFactory(customer=old, name="欧阳芳")
    assert found(org.sales1, "泰电") == {old.name}  # inside the name, not a prefix
    assert found(org.sales1, "e沪") == {old.name}  # short name, case folded
    assert found(org.sales1, "CM") == {old.name}
    assert found(org.sales1, "阳芳") == {old.name}  # a contact's name
    assert found(org.sales2, "泰电") == set()  # another salesperson's customer
    assert found(org.sales1, "泰X") == set()


def test_bigram_index_follows_renames_and_deletes(org, monkeypatch):
    monkeypatch.setattr(selectors, "SHORT_QUERY_SCAN", 0)
    customer = CustomerFactory(owner=org.sales1, name="杭州远图信息有限公司")
    contact = ContactFactory(customer=customer, name="司马迁")
    Customer.objects.filter(pk=customer.pk).update(name="杭州星河信息有限公司")
    assert found(org.sales1, "远图") == set()
    assert found(org.sales1, "星河") == {"杭州星河信息有限公司"}
    Contact.all_objects.filter(pk=contact.pk).delete()
    assert found(org.sales1, "马迁") == set()
    Customer.all_objects.filter(pk=customer.pk).delete()
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) FROM {textindex.bigram_table(textindex.CUSTOMER_TABLE)} "
                "WHERE id = %s",
                [customer.pk],
            )
            assert cursor.fetchone()[0] == 0


def test_bigram_index_is_rebuilt_whole(org, monkeypatch):
    # The generator drops the structures for a large load and builds them over the rows.
    monkeypatch.setattr(selectors, "SHORT_QUERY_SCAN", 0)
    customer = CustomerFactory(owner=org.sales1, name="苏州博远精密仪器有限公司")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # CREATE INDEX refuses pending FK checks
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    textindex.text_index_drop()
    Customer.objects.filter(pk=customer.pk).update(name="苏州博远精工仪器有限公司")
    textindex.text_index_ensure()
    assert found(org.sales1, "精工") == {"苏州博远精工仪器有限公司"}
    assert found(org.sales1, "精密") == set()


def test_two_character_search_uses_the_bigram_index(org):
    CustomerFactory(owner=org.sales1, name="苏州博远精密仪器有限公司")
    sql, params = selectors.customer_search_sql(user=org.sales1, query="精密")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
        explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
        cursor.execute(explain + sql, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    if connection.vendor == "postgresql":
        assert "cust_search_bigram" in plan and "contact_name_bigram" in plan
    else:
        assert textindex.bigram_table(textindex.CUSTOMER_TABLE) in plan


def test_many_matches_become_conditions_and_find_the_same(org, monkeypatch):
    # Few matches go to the list as ids (a subquery under ORDER BY id LIMIT n let
    # PostgreSQL walk the whole primary key); a term in many names becomes conditions no
    # text index serves (the indexes collected every match first). Same customers either
    # way: names, short names, contact names, phone digits, and only in scope.
    names = [f"苏州博远精密仪器{n}号有限公司" for n in range(3)]
    for name in names:
        CustomerFactory(owner=org.sales1, name=name)
    by_contact = CustomerFactory(owner=org.sales1, name="无锡华光电子有限公司")
    ContactFactory(customer=by_contact, name="精密仪器王")
    short = CustomerFactory(owner=org.sales1, name="常州某公司", short_name="精密仪器常州")
    CustomerFactory(owner=org.sales2, name="苏州博远精密仪器9号有限公司")  # out of scope
    expected = {*names, by_contact.name, short.name}
    phone = CustomerFactory(owner=org.sales1, name="南通某公司", mobile="13912345678")
    for query, found_names in (("精密仪器", expected), ("12345678", {phone.name})):
        inline = selectors.customer_search_q(user=org.sales1, query=query)
        assert isinstance(dict(inline.children)["pk__in"], list)
        assert found(org.sales1, query) == found_names
        monkeypatch.setattr(selectors, "SEARCH_IDS_INLINE", 0)
        dense = selectors.customer_search_q(user=org.sales1, query=query)
        lookups = dict(c for c in dense.children if isinstance(c, tuple))
        assert not isinstance(lookups.get("pk__in"), list)  # contacts: their indexed lookup
        assert found(org.sales1, query) == found_names
        monkeypatch.setattr(selectors, "SEARCH_IDS_INLINE", 1000)
