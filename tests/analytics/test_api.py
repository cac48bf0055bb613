"""/api/v1/analytics/…: allowed and refused, scope, bad input, pagination, query counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from kehu.analytics import services
from kehu.analytics.models import Segment
from tests.analytics.helpers import TODAY, build_company
from tests.customers.factories import CustomerFactory
from tests.sales.factories import line

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/analytics/dashboard/",
    "/api/v1/analytics/rfm/",
    "/api/v1/analytics/customer-value/",
    "/api/v1/analytics/predictions/",
    "/api/v1/analytics/forecast/",
]


@pytest.fixture
def company(org):
    return build_company(org)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_endpoints_need_analytics_view(org, api_for, url):
    assert api_for(org.manager).get(url).status_code == 200
    assert api_for(org.salesmgr1).get(url).status_code == 200
    assert api_for(org.sales1).get(url).status_code == 403  # a salesperson
    assert APIClient().get(url).status_code in (401, 403)


def test_before_any_run_answers_say_so(org, api_for):
    api = api_for(org.manager)
    dashboard = api.get("/api/v1/analytics/dashboard/").json()
    assert dashboard["computed_at"] is None
    assert dashboard["figures"]["contract_amount"]["total"] == "0.00"
    forecast = api.get("/api/v1/analytics/forecast/").json()
    assert forecast == {
        "computed_at": None,
        "as_of": None,
        "key": "all",
        "months": [],
        "future": [],
        "series": {},
    }
    assert api.get("/api/v1/analytics/customer-value/").json()["count"] == 0


def test_dashboard_scope_and_period(company, org, api_for):
    month = {"start": TODAY.replace(day=1).isoformat(), "end": TODAY.isoformat()}
    mine = api_for(org.salesmgr1).get("/api/v1/analytics/dashboard/", month).json()
    everything = api_for(org.manager).get("/api/v1/analytics/dashboard/", month).json()
    assert mine["period"]["preset"] == "custom"
    assert len(mine["period"]["months"]) == 1
    assert mine["figures"]["contract_amount"]["total"] == "150000.00"
    assert everything["figures"]["contract_amount"]["total"] == "230000.00"
    assert mine["figures"]["collected"]["total"] == "25000.00"
    assert mine["figures"]["contract_amount"]["total_last_year"] == "40000.00"
    assert mine["computed_at"] is not None
    assert [p["id"] for p in mine["targets"]["people"]] == [org.sales1.pk]
    assert mine["funnel"]["steps"][0]["count"] == 2
    assert mine["aging"]["overdue"] == "5000.00"
    assert {c["customer"] for c in mine["top_customers"]} == {
        company.customers["a"].pk,
        company.customers["b"].pk,
    }
    assert sum(Decimal(e["amount"]) for e in mine["expenses"]) == Decimal("1100.00")
    preset = api_for(org.manager).get("/api/v1/analytics/dashboard/", {"preset": "this_month"})
    assert preset.json()["figures"]["contract_amount"]["total"] == "230000.00"


@pytest.mark.parametrize(
    "query, field",
    [
        ({"start": "2026-05-01", "end": "2026-03-01"}, "end"),
        ({"start": "2020-01-01", "end": "2026-03-01"}, "end"),
        ({"start": "yesterday"}, "start"),
        ({"preset": "last_week"}, "preset"),
    ],
)
def test_dashboard_bad_period_is_a_field_error(org, api_for, query, field):
    response = api_for(org.manager).get("/api/v1/analytics/dashboard/", query)
    assert response.status_code == 400
    assert field in response.json()


def test_dashboard_without_finance_view_has_no_money_parts(company, org, api_for):
    from kehu.system.models import Role
    from tests.factories import UserFactory

    role = Role.objects.create(
        code="analyst", name="分析员", data_scope="all", permissions=["analytics.view"]
    )
    analyst = UserFactory(username="analyst", department=org.head, roles=[role])
    body = api_for(analyst).get("/api/v1/analytics/dashboard/").json()
    assert body["aging"] is None and body["expenses"] is None
    assert body["funnel"] is None and body["top_products"] is None
    assert body["figures"]["contract_amount"]["total"] != "0.00"  # stored figures still


def test_customer_value_is_paginated_scoped_filtered(company, org, api_for):
    mine = api_for(org.salesmgr1).get("/api/v1/analytics/customer-value/").json()
    assert mine["count"] == 2
    assert {r["customer"] for r in mine["results"]} == {
        company.customers["a"].pk,
        company.customers["b"].pk,
    }
    row = mine["results"][0]
    assert {"revenue", "cost", "gross_profit", "clv", "p_alive", "segment"} <= set(row)
    api = api_for(org.manager)
    ordered = api.get("/api/v1/analytics/customer-value/", {"ordering": "-revenue"}).json()
    revenues = [Decimal(r["revenue"]) for r in ordered["results"]]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 3
    paged = api.get("/api/v1/analytics/customer-value/", {"page_size": 1, "page": 2}).json()
    assert paged["count"] == 3 and len(paged["results"]) == 1
    segment = ordered["results"][0]["segment"]
    filtered = api.get("/api/v1/analytics/customer-value/", {"segment": segment}).json()
    assert all(r["segment"] == segment for r in filtered["results"])
    owner = api.get("/api/v1/analytics/customer-value/", {"owner": org.sales3.pk}).json()
    assert [r["customer"] for r in owner["results"]] == [company.customers["c"].pk]
    bad = api.get("/api/v1/analytics/customer-value/", {"segment": "vip"})
    assert bad.status_code == 400


def test_rfm_has_the_eight_segments_in_scope(company, org, api_for):
    body = api_for(org.salesmgr1).get("/api/v1/analytics/rfm/").json()
    assert [s["segment"] for s in body["segments"]] == list(Segment.values)
    assert sum(s["customers"] for s in body["segments"]) == 2
    assert body["computed_at"] is not None


def test_predictions_recommendations_forecast_on_history(history, org, api_for):
    services.analytics_refresh_all(as_of=TODAY)
    api = api_for(org.salesmgr1)
    body = api.get("/api/v1/analytics/predictions/").json()
    assert body["count"] == 30  # sales1's half of the 60 customers
    first = body["results"][0]
    assert set(first) >= {
        "customer",
        "p_alive",
        "expected_purchases",
        "clv",
        "churn_risk",
        "churn_factors",
    }
    risks = [r["churn_risk"] for r in body["results"]]
    assert risks == sorted(risks, reverse=True)
    factor = first["churn_factors"][0]
    assert set(factor) == {"feature", "label", "weight", "phrase"} and factor["phrase"]
    owners = {c.pk: c.owner_id for c in history["customers"]}
    assert {owners[r["customer"]] for r in body["results"]} == {org.sales1.pk}

    own = history["customers"][4]  # sales1's; bought products 0 and 1
    other = history["customers"][5]  # sales3's, 销售二部
    answer = api.get("/api/v1/analytics/recommendations/", {"customer": own.pk, "limit": 3})
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert len(items) <= 3
    assert all(i["product"] not in {p.pk for p in history["products"][:2]} for i in items)
    assert answer.json()["computed_at"] is not None
    refused = api.get("/api/v1/analytics/recommendations/", {"customer": other.pk})
    assert refused.status_code == 404  # another department's customer
    assert api.get("/api/v1/analytics/recommendations/").status_code == 400
    assert api.get("/api/v1/analytics/recommendations/", {"customer": "x"}).status_code == 400
    assert api.get("/api/v1/analytics/recommendations/", {"customer": 999999}).status_code == 404
    salesperson = api_for(org.sales1).get(
        "/api/v1/analytics/recommendations/", {"customer": own.pk}
    )
    assert salesperson.status_code == 403

    forecast = api.get("/api/v1/analytics/forecast/").json()
    assert forecast["key"] == f"department:{org.sales1_dept.pk}"
    assert set(forecast["series"]) == {"contract_amount", "collected"}
    assert len(forecast["future"]) == 3
    assert len(forecast["series"]["contract_amount"]["mean"]) == 3
    assert api_for(org.manager).get("/api/v1/analytics/forecast/").json()["key"] == "all"


def test_list_query_counts_do_not_grow(company, org, api_for):
    api = api_for(org.manager)
    urls = ENDPOINTS

    def count(url):
        with CaptureQueriesContext(connection) as context:
            assert api.get(url).status_code == 200
        return len(context.captured_queries)

    api.get(urls[0])  # the user's permissions and scope are cached on it after this
    few = [count(u) for u in urls]
    assert max(few) <= 30
    from kehu.sales import services as sales

    for _ in range(4):
        customer = CustomerFactory(owner=org.sales1)
        sales.order_create(
            actor=org.sales1,
            data={"customer": customer, "title": "订单"},
            lines=[line(company.products[1], "1", "70.00")],
        )
    services.analytics_refresh_all(as_of=TODAY)
    assert [count(u) for u in urls] == few
