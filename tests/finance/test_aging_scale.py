"""The aging report at scale: summed by the database, a fixed number of queries whatever the
number of debtors, the page shows the largest and totals everyone."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kehu.analytics.selectors import aging_summary
from kehu.finance import selectors, views
from tests.finance.factories import active_contract, pay, plan

pytestmark = pytest.mark.django_db


def _debtors(org, amounts):
    today = timezone.localdate()
    contracts = []
    for amount in amounts:
        contract = active_contract(org, amount=str(amount))
        plan(contract, (today - datetime.timedelta(days=45), str(amount)))
        contracts.append(contract)
    return contracts


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as captured:
        fn()
    return len(captured.captured_queries)


def test_aging_limit_keeps_the_largest_and_totals_cover_all(org):
    contracts = _debtors(org, [100, 400, 300, 200])
    pay(contracts[1], "150.00", confirm_by=org.finance)  # 250 left
    rows = selectors.receivables_aging(user=org.finance, limit=2)
    assert [r["total"] for r in rows] == [Decimal("300.00"), Decimal("250.00")]
    totals = selectors.receivables_aging_totals(user=org.finance)
    assert totals["total"] == totals["d31_60"] == Decimal("850.00")
    assert totals["customers"] == 4 and totals["not_due"] == 0


def test_aging_queries_do_not_grow_with_debtors(org):
    _debtors(org, [100, 200])
    selectors.receivables_aging(user=org.finance)  # the user's roles are read once
    few = _queries(lambda: selectors.receivables_aging(user=org.finance))
    top = _queries(lambda: selectors.receivables_aging(user=org.finance, limit=2))
    _debtors(org, [300, 400, 500])
    assert _queries(lambda: selectors.receivables_aging(user=org.finance)) == few <= 3
    # From the stored aggregates: the days and months by due date, the debtor counts and
    # customers owed by several owners; the largest debtors (two index reads) and their
    # own contracts' instalments (one query), their names (one).
    assert _queries(lambda: selectors.receivables_aging_totals(user=org.finance)) == 4
    assert _queries(lambda: selectors.receivables_aging(user=org.finance, limit=2)) == top == 4
    assert _queries(lambda: aging_summary(user=org.finance)) == 8
    for group_by in ("owner", "department"):
        assert (
            _queries(lambda g=group_by: selectors.receivables_aging(user=org.finance, group_by=g))
            == 3
        )


def test_aging_page_shows_the_largest_rows_and_says_so(org, client_for, monkeypatch):
    monkeypatch.setattr(views, "AGING_PAGE_ROWS", 2)
    _debtors(org, [100, 200, 300])
    client = client_for(org.finance)
    client.get(reverse("finance:aging"))  # the session keeps the user's permissions
    with CaptureQueriesContext(connection) as captured:
        body = client.get(reverse("finance:aging")).content.decode()
    assert 'id="aging-cut"' in body and body.count("finance/reconciliation/?customer=") == 2
    assert "600.00" in body  # the total of all three
    _debtors(org, [400, 500])
    with CaptureQueriesContext(connection) as again:
        client.get(reverse("finance:aging"))
    assert len(again.captured_queries) == len(captured.captured_queries)
    by_owner = client.get(reverse("finance:aging"), {"by": "owner"}).content.decode()
    assert 'id="aging-cut"' not in by_owner  # owners are few: all shown
