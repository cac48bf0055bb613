"""Searching records by their own text and their customer's name (kehu/customers/
linked_search.py): the same rows whether the matches are read from the indexes as ids or
tested as conditions, on every page and API that searches so, inside the data scope."""

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.state import ProjectState
from django.urls import reverse
from django.utils import timezone

from kehu.core.migration_ops import SubstringIndex
from kehu.customers import linked_search
from kehu.customers.linked_search import customer_ids_named, linked_search_q
from kehu.customers.models import Contact, Customer, Opportunity
from kehu.customers.textindex import pg_bigram_expression
from kehu.sales.models import Contract
from tests.customers.factories import ContactFactory, CustomerFactory
from tests.customers.test_opportunities import opportunity_for
from tests.sales.factories import contract_for


@pytest.fixture
def records(org):
    daan = CustomerFactory(name="达安数据服务有限公司", short_name="达安", owner=org.sales1)
    huawei = CustomerFactory(name="华为技术有限公司", owner=org.sales1)
    acme = CustomerFactory(name="Acme Trading Co", owner=org.sales1)
    old = CustomerFactory(name="旧达安贸易公司", owner=org.sales1)
    contracts = [
        contract_for(org.sales1, customer=daan, title="年度采购合同"),
        contract_for(org.sales1, customer=huawei, title="ERP实施合同"),
        contract_for(org.sales1, customer=acme, title="acme erp rollout"),
        contract_for(org.sales1, customer=old, title="维保合同"),
    ]
    opportunity_for(org.sales1, customer=daan, title="二期扩容")
    opportunity_for(org.sales1, customer=huawei, title="ERP 项目")
    opportunity_for(org.sales1, customer=acme, title="Cloud migration")
    ContactFactory(customer=daan, name="王芳")
    ContactFactory(customer=huawei, name="任正")
    ContactFactory(customer=acme, name="John Smith")
    Customer.all_objects.filter(pk=old.pk).update(deleted_at=timezone.now())
    return {"contracts": contracts, "huawei": huawei}


def _expected(model, query, fields, codes, customer, initials):
    """The rows as the search promises them, tested in Python."""
    upper, lowered = query.strip().upper(), query.lower().replace(" ", "")
    columns = fields + codes if len(upper) >= 3 else fields  # numbers from three characters
    found = set()
    for row in model.objects.all():
        hit = any(upper in getattr(row, name).upper() for name in columns)
        owner = row if customer == "" else (getattr(row, customer) if customer else None)
        if owner is not None:
            owner = Customer.all_objects.get(pk=owner.pk)
            hit = hit or upper in owner.name.upper() or upper in owner.short_name.upper()
            hit = hit or owner.code == upper
            if initials and lowered.isascii() and lowered.isalpha():
                hit = hit or lowered in owner.name_initials
        if hit:
            found.add(row.pk)
    return found


SEARCHES = [
    (Contract, ("title",), ("number",), "customer", False),
    (Contract, ("title",), ("number",), "customer", True),
    (Opportunity, ("title",), (), "customer", False),
    (Contact, ("name",), (), None, False),
    (Customer, (), (), "", True),
]
QUERIES = ["达安数据", "达安", "达", "ERP", "erp", "Erp实施", "hwjs", "hw", "acme", "ACME TRADING"]
QUERIES += ["王芳", "j", "无此客户", " 达安 ", "HT", "采购", "合同"]


@pytest.mark.parametrize("dense", [False, True], ids=["ids", "conditions"])
def test_ids_and_conditions_find_the_same_rows(org, records, monkeypatch, dense):
    if dense:  # every match "too many": the conditions no index serves
        monkeypatch.setattr(linked_search, "SEARCH_IDS_INLINE", 0)
    contract = records["contracts"][1]
    queries = [*QUERIES, contract.number[3:9], records["huawei"].code.lower()]
    for model, fields, codes, customer, initials in SEARCHES:
        for query in queries:
            q = linked_search_q(
                model, query, fields=fields, codes=codes, customer=customer, initials=initials
            )
            found = set(model.objects.filter(q).values_list("pk", flat=True))
            expected = _expected(model, query, fields, codes, customer, initials)
            assert found == expected, (model.__name__, query, customer, initials)


def test_a_term_in_many_customers_is_left_to_the_conditions(org, records, monkeypatch):
    assert customer_ids_named("达安") == sorted(
        Customer.all_objects.filter(name__contains="达安").values_list("pk", flat=True)
    )
    assert customer_ids_named("达") is None  # one character: no index holds it
    assert customer_ids_named("hw", initials=True) is None  # two initials: neither
    monkeypatch.setattr(linked_search, "SEARCH_IDS_INLINE", 1)
    assert customer_ids_named("达安") is None
    assert customer_ids_named("达安数据") is not None


def _texts(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


def test_pages_search_by_customer_name_only_in_scope(org, records, client_for):
    theirs = CustomerFactory(name="永泰达安科技有限公司", owner=org.sales3)
    contract_for(org.sales3, customer=theirs, title="别人的合同")
    opportunity_for(org.sales3, customer=theirs, title="别人的商机")
    ContactFactory(customer=theirs, name="李四")
    mine, manager = client_for(org.sales1), client_for(org.manager)
    pages = [
        (reverse("customers:opportunity_board"), "二期扩容", "别人的商机"),
        (reverse("customers:opportunity_list"), "二期扩容", "别人的商机"),
        (reverse("sales:contract_list"), records["contracts"][0].number, "别人的合同"),
        (reverse("customers:contact_list"), "王芳", "李四"),
    ]
    for url, own, other in pages:
        body = _texts(mine.get(url, {"q": "达安"}))
        assert own in body and other not in body, url
        body = _texts(mine.get(url, {"q": "永泰达安"}))
        assert other not in body, url
        assert other in _texts(manager.get(url, {"q": "永泰达安"})), url
    body = _texts(mine.get(reverse("search"), {"q": "永泰达安"}))
    assert "别人的合同" not in body and "永泰达安科技" not in body
    assert "别人的合同" in _texts(manager.get(reverse("search"), {"q": "永泰达安"}))


def test_board_counts_only_the_matches(org, records, client_for):
    body = _texts(client_for(org.sales1).get(reverse("customers:opportunity_board"), {"q": "ERP"}))
    assert "ERP 项目" in body and "二期扩容" not in body and "Cloud migration" not in body
    assert body.count('data-count="1"') == 1


def test_a_searched_board_over_the_count_budget_shows_cards_uncounted(
    org, records, client_for, monkeypatch
):
    from kehu.core import pagination
    from kehu.customers.selectors_opportunities import BOARD_COLUMN_LIMIT

    for n in range(BOARD_COLUMN_LIMIT + 1):
        opportunity_for(org.sales1, title=f"扩容{n}期")
    url = reverse("customers:opportunity_board")
    client = client_for(org.sales1)
    counted = _texts(client.get(url, {"q": "扩容"}))
    assert 'data-count="22"' in counted and "2 more in the list" in counted
    monkeypatch.setattr(pagination, "within_budget", lambda read, budget_ms, **kw: None)
    body = _texts(client.get(url, {"q": "扩容"}))
    assert "二期扩容" in body or "扩容20期" in body
    assert "data-count=" not in body and "data-total=" not in body
    assert "not counted in time" in body and "More in the list" in body
    # Unsearched, the board's figures are read without a budget.
    assert 'data-count="' in _texts(client.get(url))


def test_api_search_takes_the_customer_name_and_keeps_the_scope(org, records, api_for):
    theirs = CustomerFactory(name="永泰达安科技有限公司", owner=org.sales3)
    contract_for(org.sales3, customer=theirs, title="别人的合同")
    opportunity_for(org.sales3, customer=theirs, title="别人的商机")

    def titles(user, path, term):
        response = api_for(user).get(path, {"search": term})
        assert response.status_code == 200
        return {row["title"] for row in response.json()["results"]}

    # A deleted customer's contracts are still found by its name.
    assert titles(org.sales1, "/api/v1/contracts/", "达安") == {"年度采购合同", "维保合同"}
    assert titles(org.sales1, "/api/v1/contracts/", "erp") == {"ERP实施合同", "acme erp rollout"}
    assert titles(org.sales1, "/api/v1/contracts/", "永泰达安") == set()
    assert titles(org.manager, "/api/v1/contracts/", "永泰达安") == {"别人的合同"}
    assert titles(org.sales1, "/api/v1/opportunities/", "达安") == {"二期扩容"}
    assert titles(org.sales1, "/api/v1/opportunities/", "永泰达安") == set()
    assert titles(org.manager, "/api/v1/opportunities/", "永泰达安") == {"别人的商机"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("grams", [3, 2])
def test_substring_index_operation_builds_on_postgresql_only(grams):
    operation = SubstringIndex("contract", "contract_test_grams", ["title"], grams=grams)
    state = ProjectState.from_apps(apps)

    def indexes():
        with connection.cursor() as cursor:
            return connection.introspection.get_constraints(cursor, "sales_contract")

    with connection.schema_editor() as editor:
        operation.database_forwards("sales", editor, state, state)
    assert ("contract_test_grams" in indexes()) == (connection.vendor == "postgresql")
    if connection.vendor == "postgresql":  # the search's own lookup can use it
        if grams == 3:
            sql, params = linked_search._sql(
                Contract._base_manager.filter(title__icontains="年度采购")
            )
        else:
            sql, params = (
                "SELECT id FROM sales_contract WHERE "
                f"({pg_bigram_expression(('title',))}) @> ARRAY[UPPER(%s)]",
                ("采购",),
            )
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            cursor.execute("RESET enable_seqscan")
        assert "contract_test_grams" in plan
    with connection.schema_editor() as editor:
        operation.database_backwards("sales", editor, state, state)
    assert "contract_test_grams" not in indexes()
