"""Analytics reads: scope on the stored rows, and every dashboard figure equal to the same
filter applied through the list selector of the page it links to."""

import datetime
from decimal import Decimal

import pytest
from django.db.models import Sum

from kehu.analytics import selectors
from kehu.analytics.forms import PeriodForm, preset_period
from kehu.analytics.models import Metric, Segment
from kehu.core.dates import month_start
from kehu.core.exceptions import PermissionRefused
from kehu.customers.selectors import customer_list_visible_to, followup_list_visible_to
from kehu.customers.selectors_opportunities import opportunity_list_visible_to
from kehu.finance.selectors import (
    expense_list_visible_to,
    payment_list_visible_to,
    receivables_aging,
    refund_list_visible_to,
)
from kehu.sales.models import ContractStatus, OrderLine, OrderStatus
from kehu.sales.selectors import contract_list_visible_to, order_list_visible_to
from tests.analytics.helpers import TODAY, build_company

pytestmark = pytest.mark.django_db

SIGNED = [ContractStatus.ACTIVE, ContractStatus.COMPLETED, ContractStatus.TERMINATED]


@pytest.fixture
def company(org):
    return build_company(org)


@pytest.fixture
def month():
    return preset_period("this_month", TODAY)


def _sum(queryset, field="amount") -> Decimal:
    return queryset.aggregate(total=Sum(field))["total"] or Decimal("0.00")


def _list_figures(user, period) -> dict:
    """The dashboard's figures computed the way the lists behind them filter."""
    dates = {"gte": period.start, "lte": period.end}
    contracts = contract_list_visible_to(user=user).filter(
        status__in=SIGNED, signed_on__gte=dates["gte"], signed_on__lte=dates["lte"]
    )
    payments = payment_list_visible_to(user=user).filter(
        status="confirmed", received_on__gte=dates["gte"], received_on__lte=dates["lte"]
    )
    refunds = refund_list_visible_to(user=user).filter(
        status="approved", refunded_on__gte=dates["gte"], refunded_on__lte=dates["lte"]
    )
    return {
        Metric.CONTRACT_AMOUNT: _sum(contracts, "total_amount"),
        Metric.CONTRACTS: contracts.count(),
        Metric.COLLECTED: _sum(payments) - _sum(refunds),
        Metric.NEW_CUSTOMERS: customer_list_visible_to(user=user)
        .filter(created_at__date__gte=dates["gte"], created_at__date__lte=dates["lte"])
        .count(),
        Metric.FOLLOWUPS: followup_list_visible_to(user=user)
        .filter(happened_at__date__gte=dates["gte"], happened_at__date__lte=dates["lte"])
        .count(),
        Metric.EXPENSES: _sum(
            expense_list_visible_to(user=user).filter(
                status__in=["approved", "paid"],
                spent_on__gte=dates["gte"],
                spent_on__lte=dates["lte"],
            )
        ),
    }


@pytest.mark.parametrize(
    "username, expected",
    [
        (
            "salesmgr1",
            {"contract_amount": "150000.00", "collected": "25000.00", "expenses": "1100.00"},
        ),
        (
            "manager",
            {"contract_amount": "230000.00", "collected": "45000.00", "expenses": "1600.00"},
        ),
    ],
)
def test_dashboard_figures_match_the_lists_they_link_to(company, org, month, username, expected):
    user = getattr(org, username)
    figures = selectors.period_figures(user=user, period=month)
    from_lists = _list_figures(user, month)
    for metric, value in from_lists.items():
        assert figures[metric]["total"] == value, metric
    for metric, value in expected.items():
        assert figures[metric]["total"] == Decimal(value), metric
    # The same months last year: sales1's contract a year ago, in both scopes.
    assert figures[Metric.CONTRACT_AMOUNT]["total_last_year"] == Decimal("40000.00")


def test_scope_sales_manager_sees_only_his_department(company, org, month):
    mine = selectors.period_figures(user=org.salesmgr1, period=month)
    everything = selectors.period_figures(user=org.manager, period=month)
    assert mine[Metric.NEW_CUSTOMERS]["total"] == 2  # sales1's and sales2's customers
    assert everything[Metric.NEW_CUSTOMERS]["total"] == 3
    assert mine[Metric.FOLLOWUPS]["total"] == 2
    assert everything[Metric.FOLLOWUPS]["total"] == 3
    scores = selectors.score_list_visible_to(user=org.salesmgr1)
    assert {s.customer.owner for s in scores} == {org.sales1, org.sales2}
    assert selectors.score_list_visible_to(user=org.manager).count() == 3


def test_figures_need_analytics_view(company, org, month):
    with pytest.raises(PermissionRefused):
        selectors.period_figures(user=org.sales1, period=month)
    with pytest.raises(PermissionRefused):
        selectors.score_list_visible_to(user=org.sales1)


def test_funnel_counts_are_the_opportunity_list_per_stage(company, org):
    for user, first, won in ((org.salesmgr1, 2, 1), (org.manager, 3, 1)):
        funnel = selectors.funnel(user=user)
        opportunities = opportunity_list_visible_to(user=user)
        for step in funnel["steps"]:
            assert step["count"] == opportunities.filter(stage=step["stage"]).count()
        assert funnel["steps"][0]["count"] == first
        assert funnel["steps"][0]["reached"] == first + won
        assert funnel["won"] == won and funnel["win_rate"] == 1.0
        assert funnel["steps"][1]["conversion"] == pytest.approx(won / (first + won))


def test_top_products_are_the_order_lines_of_the_order_list(company, org, month):
    rows = selectors.top_products(user=org.salesmgr1, period=month)
    orders = (
        order_list_visible_to(user=org.salesmgr1)
        .exclude(status=OrderStatus.CANCELLED)
        .filter(order_date__gte=month.start, order_date__lte=month.end)
    )
    for row in rows:
        lines = OrderLine.objects.filter(order__in=orders, product_id=row["product_id"])
        assert row["amount"] == _sum(lines, "subtotal")
    by_product = {row["product_id"]: row for row in rows}
    first, second, third = company.products
    assert by_product[first.pk]["quantity"] == Decimal("5")  # sales1's 3 and sales2's 2
    assert by_product[first.pk]["orders"] == 2
    assert third.pk not in by_product  # sales3's, another department


def test_target_achievement_in_scope(company, org, month):
    targets = selectors.target_achievement(user=org.salesmgr1, period=month)
    assert [row["id"] for row in targets["people"]] == [org.sales1.pk]
    person = targets["people"][0]
    assert person["contract_target"] == Decimal("120000.00")
    assert person["contract_achieved"] == Decimal("100000.00")
    assert person["payment_achieved"] == Decimal("25000.00")
    assert person["contract_rate"] == pytest.approx(100000 / 120000)
    department = targets["departments"][0]
    assert department["id"] == org.sales1_dept.pk
    assert department["contract_achieved"] == Decimal("150000.00")
    everyone = selectors.target_achievement(user=org.manager, period=month)
    assert {row["id"] for row in everyone["people"]} == {org.sales1.pk, org.sales3.pk}


def test_aging_and_expenses_are_the_finance_selectors(company, org, month):
    aging = selectors.aging_summary(user=org.salesmgr1)
    rows = receivables_aging(user=org.salesmgr1)
    assert aging["total"] == sum((r["total"] for r in rows), Decimal("0")) == Decimal("75000.00")
    assert aging["overdue"] == Decimal("5000.00")  # the first instalment, 40 days late
    assert selectors.aging_summary(user=org.finance)["total"] == Decimal("75000.00")
    expenses = selectors.expenses_summary(user=org.salesmgr1, period=month)
    travel = next(r for r in expenses if r["amount"] == Decimal("800.00"))
    listed = expense_list_visible_to(user=org.salesmgr1).filter(
        category_id=travel["category_id"], status__in=["approved", "paid"]
    )
    assert _sum(listed) == travel["amount"]
    assert sum(r["amount"] for r in expenses) == Decimal("1100.00")


def test_segment_summary_has_all_eight_segments(company, org):
    rows = selectors.segment_summary(queryset=selectors.score_list_visible_to(user=org.manager))
    assert [r["segment"] for r in rows] == list(Segment.values)
    assert sum(r["customers"] for r in rows) == 3
    totals = selectors.segment_totals(rows)
    assert totals["revenue"] == Decimal("1100.00")  # the orders: 300 + 100 + 200 + 500


def test_forecast_series_follows_the_scope(company, org):
    assert selectors.forecast_series_key(org.manager) == "all"
    assert selectors.forecast_series_key(org.finance) == "all"
    assert selectors.forecast_series_key(org.salesmgr1) == f"department:{org.sales1_dept.pk}"
    assert selectors.forecast_series_key(org.sales1) == f"user:{org.sales1.pk}"
    forecast = selectors.forecast_for(user=org.salesmgr1)
    assert forecast["key"] == f"department:{org.sales1_dept.pk}"
    assert forecast["future"][0] == month_start(TODAY)
    contract = forecast["series"][Metric.CONTRACT_AMOUNT]
    # This month's target of 销售一部 is its department target, not the people's sum.
    assert contract["targets"][0] == 200000.0
    assert contract["targets"][1:] == [None, None]
    everyone = selectors.forecast_for(user=org.manager)
    # Everyone: the top-most department targets (only 销售一部 has one).
    assert everyone["series"][Metric.CONTRACT_AMOUNT]["targets"][0] == 200000.0


def test_nothing_stored_before_the_first_run(org, month):
    assert selectors.latest_run("figures") is None
    assert selectors.forecast_for(user=org.manager) is None
    figures = selectors.period_figures(user=org.manager, period=month)
    assert figures[Metric.CONTRACT_AMOUNT]["total"] == 0
    assert selectors.top_customers(user=org.manager) == []


def test_factor_phrases_follow_the_coefficient_sign():
    factors = [
        {"feature": "orders_365d", "weight": 0.8},
        {"feature": "recency_days", "weight": 0.5},
    ]
    phrases = selectors.factor_phrases(factors, {"orders_365d": -1.2, "recency_days": 0.9})
    assert phrases == ["few orders in the last year", "a long time since the last order"]
    assert selectors.feature_label("followups_90d") == "follow-ups in the last 90 days"


@pytest.mark.parametrize(
    "data, start, end",
    [
        ({}, datetime.date(TODAY.year, 1, 1), None),
        ({"preset": "this_month"}, month_start(TODAY), None),
        ({"preset": "last_12_months"}, month_start(TODAY, 11), None),
        (
            {"preset": "custom", "start": "2025-03-15", "end": "2025-05-02"},
            datetime.date(2025, 3, 1),
            datetime.date(2025, 5, 31),
        ),
        ({"start": "2025-03-15", "end": "2025-03-20"}, datetime.date(2025, 3, 1), None),
    ],
)
def test_period_form_covers_whole_months(data, start, end):
    period = PeriodForm(data or None, today=TODAY).period()
    assert period.start == start
    assert period.end == (end or (month_start(period.end, -1) - datetime.timedelta(days=1)))
    assert period.start.day == 1


@pytest.mark.parametrize(
    "data, field",
    [
        ({"preset": "custom", "start": "2025-05-01", "end": "2025-03-01"}, "end"),
        ({"preset": "custom", "start": "2022-01-01", "end": "2025-03-01"}, "end"),
        ({"preset": "custom", "end": "2025-03-01"}, "start"),
        ({"preset": "custom", "start": "not a date", "end": "2025-03-01"}, "start"),
        ({"preset": "yesterday"}, "preset"),
    ],
)
def test_period_form_refuses_bad_ranges_on_the_field(data, field):
    form = PeriodForm(data, today=TODAY)
    assert not form.is_valid()
    assert field in form.errors
    assert form.period() == preset_period("this_year", TODAY)  # the page still shows something
