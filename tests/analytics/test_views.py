"""Analytics pages: allowed and refused, scope, the lists behind the figures, the empty
state before any run, exports, the customer insights tag and query-count guards."""

import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from kehu.analytics import services
from kehu.analytics.models import Metric, MonthlyFigure
from kehu.core.dates import month_start
from kehu.sales import services as sales
from kehu.system.models import Role
from tests.analytics.helpers import TODAY, build_company
from tests.customers.factories import CustomerFactory
from tests.factories import UserFactory
from tests.products.factories import ProductFactory
from tests.querycount import warm_page_queries
from tests.sales.factories import line

pytestmark = pytest.mark.django_db

PAGES = [
    "analytics:dashboard",
    "analytics:customer_value",
    "analytics:rfm",
    "analytics:predictions",
    "analytics:forecast",
]


@pytest.fixture
def company(org):
    return build_company(org)


def count_queries(client, url, data=None) -> int:
    count, response = warm_page_queries(client, url, data)
    assert response.status_code == 200, url
    return count


def kpi(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}".*?data-kpi-value>([^<]*)<', html, re.S)
    assert match, key
    return match.group(1).strip()


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_pages_need_analytics_view(org, client_for, name):
    url = reverse(name)
    assert client_for(org.manager).get(url).status_code == 200
    assert client_for(org.salesmgr1).get(url).status_code == 200
    assert client_for(org.finance).get(url).status_code == 200
    assert client_for(org.sales1).get(url).status_code == 403  # a salesperson
    assert client_for(org.hr).get(url).status_code == 403
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_menu_shows_analytics_to_those_who_may_see_it(org, client_for):
    assert reverse("analytics:rfm") in client_for(org.manager).get("/").content.decode()
    assert reverse("analytics:dashboard") not in client_for(org.sales1).get("/").content.decode()


@pytest.mark.parametrize("name", PAGES)
def test_empty_state_before_any_run(org, client_for, name):
    html = client_for(org.manager).get(reverse(name)).content.decode()
    assert "Not computed yet" in html
    assert "manage.py analytics_refresh" in html


# --- dashboard ------------------------------------------------------------------------------


def test_dashboard_figures_follow_the_scope(company, org, client_for):
    this_month = {"preset": "this_month"}
    mine = client_for(org.salesmgr1).get(reverse("analytics:dashboard"), this_month)
    everything = client_for(org.manager).get(reverse("analytics:dashboard"), this_month)
    mine_html, all_html = mine.content.decode(), everything.content.decode()
    assert kpi(mine_html, "contract_amount") == "¥150,000"
    assert kpi(all_html, "contract_amount") == "¥230,000"
    assert kpi(mine_html, "collected") == "¥25,000"
    assert kpi(all_html, "collected") == "¥45,000"
    assert kpi(mine_html, "new_customers") == "2"
    assert kpi(all_html, "new_customers") == "3"
    assert kpi(mine_html, "overdue") == "¥5,000"
    # 销售二部's customer shows nowhere on the sales manager's page.
    top_mine = mine.context["charts"]["top_customers"]["categories"]
    top_all = everything.context["charts"]["top_customers"]["categories"]
    assert company.customers["c"].name not in top_mine and company.customers["c"].name in top_all
    assert company.customers["c"].name not in mine_html
    charts = everything.context["charts"]
    assert charts["money"]["series"][0]["data"][-1] == 230000.0


def test_dashboard_numbers_equal_the_lists_they_open(company, org, client_for):
    """Follow the drill-down links of the figures whose list pages exist in this tree and
    compare the rows they show with the dashboard's number."""
    client = client_for(org.salesmgr1)
    response = client.get(reverse("analytics:dashboard"), {"preset": "this_month"})
    links = response.context["links"]
    figures = response.context["data"]["figures"]
    pages = {
        "new_customers_all": figures[Metric.NEW_CUSTOMERS]["total"],
        "followups_all": figures[Metric.FOLLOWUPS]["total"],
    }
    for key, expected in pages.items():
        assert links[key], key
        listed = client.get(links[key])
        assert listed.status_code == 200
        assert listed.context["paginator"].count == expected, key
    # The month bars link to the same lists, one month each.
    month_link = response.context["charts"]["activity"]["series"][0]["urls"][-1]
    assert client.get(month_link).context["paginator"].count == 2
    for step in response.context["data"]["funnel"]["steps"]:
        listed = client.get(step["url"])
        assert listed.context["paginator"].count == step["count"], step["stage"]
    # Lists that are not installed in this tree get no link (no dead links).
    from django.urls import NoReverseMatch

    for key, name in (("contracts_all", "sales:contract_list"), ("aging", "finance:aging")):
        try:
            reverse(name)
        except NoReverseMatch:
            assert links[key] == ""
        else:
            assert links[key].startswith(reverse(name))


def test_dashboard_money_first_for_finance(company, org, client_for):
    finance = client_for(org.finance).get(reverse("analytics:dashboard")).context["sections"]
    sales = client_for(org.salesmgr1).get(reverse("analytics:dashboard")).context["sections"]
    assert finance.index("receivables") < finance.index("funnel")
    assert sales.index("funnel") < sales.index("receivables")


def test_dashboard_period_picker(company, org, client_for):
    client = client_for(org.manager)
    url = reverse("analytics:dashboard")
    response = client.get(url, {"preset": "custom", "start": "2025-03-15", "end": "2025-04-02"})
    period = response.context["period"]
    assert (period.start.isoformat(), period.end.isoformat()) == ("2025-03-01", "2025-04-30")
    bad = client.get(url, {"preset": "custom", "start": "2025-05-01", "end": "2025-03-01"})
    assert bad.status_code == 200
    html = bad.content.decode()
    assert "The end is before the start." in html and 'aria-invalid="true"' in html
    assert bad.context["period"].preset == "this_year"
    partial = client.get(url, {"preset": "this_month"}, headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert "<html" not in body and 'id="analytics-charts"' in body


def test_dashboard_export(company, org, client_for):
    response = client_for(org.manager).get(
        reverse("analytics:dashboard"), {"preset": "this_month", "export": "xlsx"}
    )
    assert response.status_code == 200 and response.content[:2] == b"PK"
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("Month", "Contract amount")
    assert rows[1][0] == f"{TODAY:%Y-%m}" and Decimal(str(rows[1][1])) == Decimal("230000")
    assert (
        client_for(org.manager).get(reverse("analytics:dashboard"), {"export": "pdf"}).status_code
        == 400
    )


def test_exports_need_analytics_export(company, org, client_for):
    viewer = Role.objects.create(
        code="analyst", name="分析员", data_scope="all", permissions=["analytics.view"]
    )
    user = UserFactory(username="viewer", department=org.head, roles=[viewer])
    client = client_for(user)
    assert client.get(reverse("analytics:dashboard")).status_code == 200
    for name in PAGES:
        assert client.get(reverse(name), {"export": "xlsx"}).status_code == 403, name
    html = client.get(reverse("analytics:customer_value")).content.decode()
    assert "export=xlsx" not in html


def test_dashboard_query_count_does_not_grow(company, org, client_for):
    client = client_for(org.manager)
    url = reverse("analytics:dashboard")
    few = count_queries(client, url)
    assert few <= 45
    for _ in range(4):  # more customers, orders and figures
        customer = CustomerFactory(owner=org.sales3)
        sales.order_create(
            actor=org.sales3,
            data={"customer": customer, "title": "订单"},
            lines=[line(ProductFactory(), "1", "50.00")],
        )
    services.analytics_refresh_all(as_of=TODAY)
    assert count_queries(client, url) == few


# --- customer value, RFM ----------------------------------------------------------------------


def test_customer_value_list_scope_filter_sort(company, org, client_for):
    url = reverse("analytics:customer_value")
    mine = client_for(org.salesmgr1).get(url)
    assert mine.context["paginator"].count == 2
    html = mine.content.decode()
    assert company.customers["a"].name in html and company.customers["c"].name not in html
    everything = client_for(org.manager).get(url, {"sort": "-revenue"})
    scores = list(everything.context["object_list"])
    assert [s.revenue for s in scores] == sorted((s.revenue for s in scores), reverse=True)
    assert everything.context["segment_totals"]["revenue"] == Decimal("1100.00")
    segment = scores[0].segment
    filtered = client_for(org.manager).get(url, {"segment": segment})
    assert all(s.segment == segment for s in filtered.context["object_list"])
    owner = client_for(org.manager).get(url, {"owner": org.sales3.pk})
    assert [s.customer for s in owner.context["object_list"]] == [company.customers["c"]]


def test_customer_value_export_is_scoped(company, org, client_for):
    response = client_for(org.salesmgr1).get(
        reverse("analytics:customer_value"), {"export": "xlsx"}
    )
    rows = list(load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "Customer" and "Churn risk" in rows[0]
    assert sorted(r[0] for r in rows[1:]) == sorted(
        [company.customers["a"].name, company.customers["b"].name]
    )


def test_rfm_page_segments_link_to_the_list(company, org, client_for):
    response = client_for(org.manager).get(reverse("analytics:rfm"))
    rows = response.context["rows"]
    assert len(rows) == 8 and sum(r["customers"] for r in rows) == 3
    row = next(r for r in rows if r["customers"])
    assert row["url"] == f"{reverse('analytics:customer_value')}?segment={row['segment']}"
    listed = client_for(org.manager).get(row["url"])
    assert listed.context["paginator"].count == row["customers"]
    export = client_for(org.manager).get(row["export_url"])
    assert len(list(load_workbook(io.BytesIO(export.content)).active.iter_rows())) == (
        row["customers"] + 1
    )
    summary = client_for(org.manager).get(reverse("analytics:rfm"), {"export": "xlsx"})
    assert len(list(load_workbook(io.BytesIO(summary.content)).active.iter_rows())) == 9


def test_list_pages_query_counts_do_not_grow(company, org, client_for):
    client = client_for(org.manager)
    urls = [reverse(n) for n in PAGES[1:]]
    few = [count_queries(client, u) for u in urls]
    for _ in range(5):
        customer = CustomerFactory(owner=org.sales1)
        sales.order_create(
            actor=org.sales1,
            data={"customer": customer, "title": "订单"},
            lines=[line(company.products[0], "2", "80.00")],
        )
    services.customers_refresh(as_of=TODAY)
    assert [count_queries(client, u) for u in urls] == few
    assert max(few) <= 20


# --- predictions, forecast, customer panel (two years of history) ---------------------------


def _contract_history(org) -> None:
    """Two years of signed contract amounts, 10,000 a month for sales1 and for sales3."""
    for back in range(1, 25):
        month = month_start(TODAY, back)
        for user in (org.sales1, org.sales3):
            MonthlyFigure.objects.create(
                month=month,
                metric=Metric.CONTRACT_AMOUNT,
                owner=user,
                department=user.department,
                value=Decimal("10000.00"),
            )


def test_predictions_forecast_and_customer_panel_on_history(history, org, client_for):
    services.analytics_refresh_all(as_of=TODAY)
    client = client_for(org.manager)
    html = client.get(reverse("analytics:predictions")).content.decode()
    assert "AUC (holdout)" in html and "Recency-only AUC" in html
    assert 'id="bgnbd-params"' in html and "α =" in html
    assert 'id="holdout-table"' in html
    response = client.get(reverse("analytics:predictions"))
    charts = response.context["charts"]
    assert {"holdout", "churn_calibration", "coefficients"} <= set(charts)
    watchlist = response.context["watchlist"]
    risks = [s.churn_risk for s in watchlist]
    assert risks == sorted(risks, reverse=True) and len(watchlist) == 20
    assert all(isinstance(p, str) and p for s in watchlist for p in s.factor_phrases)
    # Scope: the sales manager's watch list holds only 销售一部's customers.
    mine = client_for(org.salesmgr1).get(reverse("analytics:predictions")).context["watchlist"]
    assert {s.customer.owner_id for s in mine} == {org.sales1.pk}

    # Orders only, no contracts yet: the forecast page says so instead of a flat line.
    empty = client.get(reverse("analytics:forecast"))
    assert empty.context["panels"] == [] and "No figures yet" in empty.content.decode()
    _contract_history(org)
    services.forecast_refresh(as_of=TODAY)
    forecast = client.get(reverse("analytics:forecast"))
    assert forecast.context["forecast"]["key"] == "all"
    assert [p["metric"] for p in forecast.context["panels"]] == [Metric.CONTRACT_AMOUNT]
    chart = forecast.context["charts"][Metric.CONTRACT_AMOUNT]
    assert len(chart["categories"]) == len(chart["history"]["data"]) == len(chart["upper"])
    assert chart["categories"][-3] == f"{month_start(TODAY):%Y-%m}"
    assert chart["target"]["data"][-3:] == [None, None, None]
    exported = client.get(reverse("analytics:forecast"), {"export": "xlsx"})
    rows = list(load_workbook(io.BytesIO(exported.content)).active.iter_rows(values_only=True))
    assert len(rows) == 1 + 36 + 3  # the stored history and the three forecast months
    assert rows[-1][3] > 0 and rows[-1][4] <= rows[-1][3] <= rows[-1][5]
    predictions = client.get(reverse("analytics:predictions"), {"export": "xlsx"})
    sheet = load_workbook(io.BytesIO(predictions.content)).active
    assert sheet.max_row == 61 and "Main risk factors" in [c.value for c in sheet[1]]
    dept = client_for(org.salesmgr1).get(reverse("analytics:forecast")).context["forecast"]
    assert dept["key"] == f"department:{org.sales1_dept.pk}"
    assert dept["series"][Metric.CONTRACT_AMOUNT]["history"][-1] == 10000.0  # sales1's half

    # The 360° panel: value, predictions, factors and recommendations, in few queries.
    customer = history["customers"][4]  # bought products 0 and 1
    request = RequestFactory().get("/")
    request.user = org.manager
    template = Template("{% load analytics %}{% customer_insights customer %}")
    with CaptureQueriesContext(connection) as queries:
        panel = template.render(Context({"customer": customer, "request": request}))
    assert len(queries) <= 8
    assert 'id="customer-insights"' in panel and "data-clv" in panel
    assert customer.score.get_segment_display() in panel
    recommended = services.recommendations_for(customer=customer)
    for item in recommended:
        assert item["product"].name in panel
    assert all(p not in {r["product"] for r in recommended} for p in history["products"][:2])
    request.user = org.sales1  # no analytics.view: nothing
    assert template.render(Context({"customer": customer, "request": request})).strip() == ""


def test_customer_panel_before_any_run(org):
    customer = CustomerFactory(owner=org.sales1)
    request = RequestFactory().get("/")
    request.user = org.manager
    panel = Template("{% load analytics %}{% customer_insights customer %}").render(
        Context({"customer": customer, "request": request})
    )
    assert "Not computed yet" in panel and "No recommendation yet." in panel
