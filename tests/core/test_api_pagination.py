"""API lists count at most up to the cap (no full COUNT over huge tables) and say so."""

import pytest

from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_api_count_exact_below_cap_and_capped_above(org, api_for, settings):
    for _ in range(5):
        CustomerFactory(owner=org.sales1)
    api = api_for(org.sales1)
    body = api.get("/api/v1/customers/", {"page_size": 2}).json()
    assert (body["count"], body["count_capped"], len(body["results"])) == (5, False, 2)
    settings.KEHU_LIST_COUNT_CAP = 3
    body = api.get("/api/v1/customers/", {"page_size": 2}).json()
    assert (body["count"], body["count_capped"]) == (3, True)
    assert body["next"]  # page 2 of the capped 3
    assert api.get("/api/v1/customers/", {"page_size": 2, "page": 3}).status_code == 404


def test_api_count_query_reads_at_most_cap_rows(
    org,
    api_for,
    settings,
):
    settings.KEHU_LIST_COUNT_CAP = 3
    for _ in range(5):
        CustomerFactory(owner=org.sales1)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        api_for(org.sales1).get("/api/v1/contracts/")
        api_for(org.sales1).get("/api/v1/customers/")
    tables = ('"sales_contract"', '"customers_customer"')
    counts = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].upper().startswith("SELECT COUNT(") and any(t in q["sql"] for t in tables)
    ]
    assert len(counts) == 2 and all("LIMIT 4" in sql for sql in counts)
