"""A filtered list counts within a time budget and otherwise pages on without a total."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kehu.core import pagination
from kehu.core.pagination import BoundedPaginator, count_within
from kehu.customers.models import Customer
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def slow_count(monkeypatch):
    """A count that cannot finish within a 0 ms budget on either database."""
    ids = Customer.objects.values("pk").order_by()
    if connection.vendor == "postgresql":
        return ids.extra(where=["pg_sleep(0.05) IS NOT NULL"])
    monkeypatch.setattr(pagination, "SQLITE_PROGRESS_STEPS", 1)
    return ids


def test_count_within_budget_or_none_and_the_connection_stays_usable(org, monkeypatch):
    for _ in range(3):
        CustomerFactory(owner=org.sales1)
    assert count_within(Customer.objects.all(), 10_000) == 3
    assert count_within(slow_count(monkeypatch), 0) is None
    # The test's transaction survived the cancelled statement, without the time limit.
    assert Customer.objects.count() == 3
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "0"
    else:
        monkeypatch.setattr(pagination, "SQLITE_PROGRESS_STEPS", 10_000)
        assert Customer.objects.filter(name__contains="x").count() == 0


def test_open_ended_paginator_reads_a_row_past_each_page():
    rows = Customer.objects.none()
    paginator = BoundedPaginator(rows, 2, budget_ms=100)
    paginator.__dict__["_bounded_count"] = 0
    paginator.open_ended = True
    assert list(paginator.page(1)) == [] and paginator.num_pages == 1


def test_search_over_its_budget_pages_without_a_total(org, client_for, monkeypatch):
    for n in range(25):
        CustomerFactory(owner=org.sales1, name=f"华东贸易{n:02d}有限公司")
    CustomerFactory(owner=org.sales2, name="华东贸易别人的有限公司")
    monkeypatch.setattr(pagination, "count_within", lambda queryset, budget_ms: None)
    client = client_for(org.sales1)
    url = reverse("customers:customer_list")

    page = client.get(url, {"q": "华东贸易"}).content.decode()
    assert page.count('href="/customers/') >= 20
    assert "21 of" not in page and "of 25" not in page  # no total
    assert "1–20, more follow" in page and "page=2" in page
    assert "别人的" not in page  # still the salesperson's own customers only

    last = client.get(url, {"q": "华东贸易", "page": 2}).content.decode()
    assert "华东贸易04有限公司" in last  # newest first: the oldest five on page 2
    assert "more follow" not in last and "page=3" not in last
    assert client.get(url, {"q": "华东贸易", "page": 3}).status_code == 404


def test_unfiltered_list_counts_without_a_budget(org, client_for, monkeypatch):
    CustomerFactory(owner=org.sales1)
    calls = []
    monkeypatch.setattr(pagination, "count_within", lambda *args: calls.append(args))
    client = client_for(org.sales1)
    with CaptureQueriesContext(connection):
        assert client.get(reverse("customers:customer_list")).status_code == 200
    assert calls == []
    client.get(reverse("customers:customer_list"), {"q": "华东"})
    assert len(calls) == 1


def test_api_search_over_its_budget_pages_without_a_total(org, api_for, monkeypatch):
    for n in range(25):
        CustomerFactory(owner=org.sales1, name=f"华东贸易{n:02d}有限公司")
    CustomerFactory(owner=org.sales2, name="华东贸易别人的有限公司")
    budgets = []

    def over_budget(queryset, budget_ms):
        budgets.append(budget_ms)
        return None

    monkeypatch.setattr(pagination, "count_within", over_budget)
    api = api_for(org.sales1)
    url = "/api/v1/customers/"

    first = api.get(url, {"search": "华东贸易"}).json()
    assert budgets == [pagination.list_count_budget_ms()]
    assert len(first["results"]) == 20
    assert first["count"] == 20 and first["count_capped"] is True  # no total: more follow
    assert "page=2" in first["next"]
    assert not any("别人的" in row["name"] for row in first["results"])  # own only

    second = api.get(first["next"]).json()
    assert len(second["results"]) == 5
    assert second["count"] == 25 and second["count_capped"] is False
    assert second["next"] is None
    assert api.get(url, {"search": "华东贸易", "page": 3}).status_code == 404

    # Unfiltered (pages, sizes and orderings do not narrow it): counted, no budget.
    budgets.clear()
    whole = api.get(url, {"page_size": 10, "ordering": "name"}).json()
    assert budgets == [] and whole["count"] == 25 and whole["count_capped"] is False
