"""The dashboard, targets and the aging page read the stored aggregates: a fixed number of
queries that do not scan the documents, the viewer's scope, today's date."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kehu.analytics import selectors
from kehu.analytics.forms import Period
from kehu.core.dates import month_end, month_start
from kehu.core.exceptions import PermissionRefused
from kehu.finance import selectors as finance_selectors
from kehu.sales import services as sales
from tests.customers.factories import CustomerFactory
from tests.finance.factories import active_contract, approved_refund, pay, plan
from tests.products.factories import ProductFactory
from tests.sales.factories import line

pytestmark = pytest.mark.django_db

# Tables whose rows grow with the business: the dashboard must not read them in bulk.
DOCUMENT_TABLES = ('"sales_orderline"', '"finance_payment"', '"finance_refund"')


def _business(org, product, *, n: int = 2) -> None:
    today = timezone.localdate()
    for owner in (org.sales1, org.sales2, org.sales3):
        for _ in range(n):
            contract = active_contract(org, owner, amount="1000.00", signed_on=today)
            plan(
                contract,
                (today - datetime.timedelta(days=40), "300.00"),
                (today + datetime.timedelta(days=20), "700.00"),
            )
            payment = pay(contract, "200.00", confirm_by=org.finance)
            approved_refund(org, payment, "50.00")
            sales.order_create(
                actor=owner,
                data={"customer": CustomerFactory(owner=owner), "title": "订单"},
                lines=[line(product, "2", "80.00")],
            )


def _queries(client, url) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("username", ["salesmgr1", "manager"])
def test_dashboard_reads_the_aggregates_in_a_fixed_number_of_queries(org, client_for, username):
    product = ProductFactory()
    _business(org, product, n=1)
    client = client_for(getattr(org, username))
    url = reverse("analytics:dashboard")
    client.get(url)  # the session keeps the user's permissions after the first request
    first = _queries(client, url)
    _business(org, product, n=2)
    again = _queries(client, url)
    assert len(again) == len(first)
    for sql in again:
        assert not any(table in sql for table in DOCUMENT_TABLES), sql
        if '"finance_receivableinstalment"' in sql:  # the five largest debtors' contracts
            assert '"customer_id" IN' in sql, sql


def test_dashboard_figures_follow_the_services(org):
    product = ProductFactory()
    _business(org, product, n=1)
    today = timezone.localdate()
    period = Period(month_start(today), month_end(today), "this_month")
    targets = selectors.achievement_stored(
        user_ids=[org.sales1.pk],
        department_ids=[org.sales.pk],
        year=today.year,
        month=today.month,
    )
    assert targets[("user", org.sales1.pk)] == {
        "contract_amount": Decimal("1000.00"),
        "payment_amount": Decimal("150.00"),
    }
    assert targets[("department", org.sales.pk)]["contract_amount"] == Decimal("3000.00")
    [row] = selectors.top_products(user=org.salesmgr1, period=period)
    # sales1 and sales2 are in salesmgr1's department, sales3 is not.
    assert (row["product_id"], row["orders"], row["amount"]) == (product.pk, 2, Decimal("320.00"))
    assert row["quantity"] == Decimal("4.000")


def test_aging_scope_holds(org):
    today = timezone.localdate()
    mine = active_contract(org, org.sales1, amount="500.00")
    plan(mine, (today - datetime.timedelta(days=5), "500.00"))
    theirs = active_contract(org, org.sales3, amount="800.00")
    plan(theirs, (today - datetime.timedelta(days=5), "800.00"))
    for user, total, customers in (
        (org.sales1, "500.00", 1),
        (org.salesmgr1, "500.00", 1),
        (org.finance, "1300.00", 2),
    ):
        stored = finance_selectors.receivables_aging_totals(user=user)
        assert stored == finance_selectors.receivables_aging_totals(user=user, live=True)
        assert (stored["total"], stored["customers"]) == (Decimal(total), customers)
    assert [r["key"] for r in finance_selectors.receivables_aging(user=org.sales1, limit=10)] == [
        mine.customer_id
    ]


def test_aggregate_reads_are_refused_without_the_module_permission(org):
    today = timezone.localdate()
    period = Period(month_start(today), month_end(today), "this_month")
    with pytest.raises(PermissionRefused):
        selectors.receivables_buckets_stored(user=org.warehouse, today=today)
    with pytest.raises(PermissionRefused):
        selectors.receivables_top_customers_stored(user=org.hr, limit=5)
    with pytest.raises(PermissionRefused):
        selectors.top_products(user=org.hr, period=period)


def test_an_instalment_ages_with_the_calendar_without_a_rebuild(org):
    today = timezone.localdate()
    contract = active_contract(org, org.sales1, amount="900.00")
    plan(
        contract,
        (today + datetime.timedelta(days=1), "400.00"),
        (today - datetime.timedelta(days=95), "500.00"),
    )
    day = datetime.timedelta(days=1)
    for later, not_due, d0_30 in ((0, "400.00", "0.00"), (2, "0.00", "400.00")):
        when = today + later * day
        totals = finance_selectors.receivables_aging_totals(user=org.finance, today=when)
        assert totals == finance_selectors.receivables_aging_totals(
            user=org.finance, today=when, live=True
        )
        assert (totals["not_due"], totals["d0_30"]) == (Decimal(not_due), Decimal(d0_30))
        assert totals["d90_plus"] == Decimal("500.00")
    # Over the months: the instalment due tomorrow is 61-90 days late in three months.
    when = today + 91 * day
    totals = finance_selectors.receivables_aging_totals(user=org.finance, today=when)
    assert totals["d61_90"] == Decimal("400.00")
    assert totals == finance_selectors.receivables_aging_totals(
        user=org.finance, today=when, live=True
    )


def test_aging_page_reads_only_the_largest_debtors_contracts(org, client_for):
    today = timezone.localdate()
    for amount in ("100.00", "200.00", "300.00"):
        contract = active_contract(org, amount=amount)
        plan(contract, (today - datetime.timedelta(days=3), amount))
    client = client_for(org.finance)
    url = reverse("finance:aging")
    client.get(url)
    first = _queries(client, url)
    for amount in ("400.00", "500.00"):
        contract = active_contract(org, amount=amount)
        plan(contract, (today - datetime.timedelta(days=3), amount))
    again = _queries(client, url)
    assert len(again) == len(first)
    aging_reads = [sql for sql in again if "aging_due" in sql]  # instalments settled live
    assert len(aging_reads) == 1 and '"customer_id" IN' in aging_reads[0]
